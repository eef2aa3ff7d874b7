"""The train log: one row per logged step, as CSV, written by training and read by evaluate.

It imports neither TensorFlow nor Keras, so that evaluate can read it cheaply.
"""

from __future__ import annotations

import csv
import io
import os

from dcgan.errors import DataError, one_line

COLUMNS = ("step", "d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy", "seconds")
# Logged by every run: the chance each augmentation applies (train.augment_probability); a log
# written by an older version lacks it and still reads.
OPTIONAL_COLUMNS = ("augment_probability",)


def rows_to_csv(rows: list[dict]) -> str:
    """Turns log rows (dicts keyed by COLUMNS) into CSV text with a header."""
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def csv_to_rows(text: str) -> list[dict]:
    """The inverse of rows_to_csv: steps as int, everything else as float."""
    return [{key: (int(value) if key == "step" else float(value)) for key, value in row.items()}
            for row in csv.DictReader(io.StringIO(text))]


def read_train_log(path: str | os.PathLike):
    """Reads the train stage's log as a pandas DataFrame with COLUMNS, then those of
    OPTIONAL_COLUMNS the log has.

    Raises:
        DataError: the log is missing, unreadable, empty or lacks a column.
    """
    import pandas

    try:
        frame = pandas.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{path}: train log not found; run the train stage first") from None
    except (ValueError, pandas.errors.ParserError) as error:
        raise DataError(f"{path}: not a readable CSV train log ({one_line(error)})") from None
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing or frame.empty:
        raise DataError(f"{path}: expected rows with columns {', '.join(COLUMNS)}, "
                        f"found {len(frame)} rows and columns {', '.join(frame.columns)}")
    return frame[list(COLUMNS) + [column for column in OPTIONAL_COLUMNS
                                  if column in frame.columns]]
