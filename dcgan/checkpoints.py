"""Training checkpoints that survive kill -9: complete directories behind an atomic pointer."""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcgan import snapshots, train_log
from dcgan.artifacts import atomic_path, save_npz, write_json
from dcgan.errors import DataError, TrainingError

logger = logging.getLogger(__name__)

POINTER = "latest.json"
SNAPSHOTS = "snapshots"
# What a store writes: the pointer, checkpoint folders, the snapshot folder, and the
# temporary names atomic_path gives them while they are being written.
OWN_NAMES = re.compile(rf"{re.escape(POINTER)}|ckpt-\d{{8}}|{SNAPSHOTS}|\..+\.tmp")
OWN_SNAPSHOT_NAMES = re.compile(r"step_\d{8}\.png|\..+\.tmp")


@dataclass
class Restored:
    step: int
    log_rows: list[dict]
    seconds: float


def _differences(saved: dict, current: dict, prefix: str = "") -> list[str]:
    found = []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            found += _differences(old, new, f"{prefix}{key}.")
        elif old != new:
            found.append(f"{prefix}{key} was {old!r}, now {new!r}")
    return found


def _arrays(state: dict[str, list]) -> dict[str, np.ndarray]:
    return {f"{owner}/{i}": np.asarray(variable.numpy())
            for owner, variables in state.items() for i, variable in enumerate(variables)}


def _dtype(variable) -> np.dtype:
    # Keras variables give their dtype as a string, TensorFlow's as a DType.
    return np.dtype(getattr(variable.dtype, "name", variable.dtype))


def _layout_differences(saved, state: dict[str, list]) -> list[str]:
    # Variables are kept by owner and position, so a checkpoint fits only a run whose
    # variables have the same count, shapes and dtypes in each owner (float16 training, for
    # one, adds the loss scale's variables to each optimizer).
    expected = {f"{owner}/{i}": (tuple(variable.shape), _dtype(variable))
                for owner, variables in state.items() for i, variable in enumerate(variables)}
    found = {key: (saved[key].shape, saved[key].dtype) for key in saved.files}
    problems = [f"{key} missing" for key in sorted(set(expected) - set(found))]
    problems += [f"{key} not used" for key in sorted(set(found) - set(expected))]
    problems += [f"{key} is {found[key][0]} {found[key][1]}, expected {shape} {dtype}"
                 for key, (shape, dtype) in sorted(expected.items())
                 if key in found and found[key] != (shape, dtype)]
    return problems


class CheckpointStore:
    """Keeps the latest checkpoint and the training snapshots under one directory.

    Each checkpoint is written as a complete directory under a temporary name and renamed into
    place; only then does the pointer file, itself replaced atomically, name it. A run killed
    at any moment therefore finds either the previous checkpoint or the new one, whole.

    The store deletes only what it wrote, and refuses a folder that holds anything else.

    Raises:
        DataError: `directory` is a file, or a folder holding files a store does not write.
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.snapshot_dir = self.directory / SNAPSHOTS
        self._check_owned()

    def _check_owned(self) -> None:
        if not self.directory.exists():
            return
        if not self.directory.is_dir():
            raise DataError(f"{self.directory}: is a file, not a checkpoint folder; pass a "
                            f"folder to --checkpoints")
        foreign = [p.name for p in self.directory.iterdir() if not OWN_NAMES.fullmatch(p.name)]
        if self.snapshot_dir.is_dir():
            foreign += [f"{SNAPSHOTS}/{p.name}" for p in self.snapshot_dir.iterdir()
                        if not OWN_SNAPSHOT_NAMES.fullmatch(p.name)]
        if foreign:
            raise DataError(f"{self.directory}: holds {', '.join(sorted(foreign)[:3])}, which "
                            f"the train stage did not write, so it is not a checkpoint folder; "
                            f"pass an empty or new folder to --checkpoints")

    def latest_step(self) -> int | None:
        """The step of the checkpoint the pointer names, or None when there is none."""
        try:
            return int(json.loads((self.directory / POINTER).read_text())["step"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, state: dict[str, list], fingerprint: dict, step: int,
             log_rows: list[dict], seconds: float) -> None:
        """Writes the checkpoint of `step` and points at it.

        Raises:
            TrainingError: a variable holds NaN or infinity; nothing is written, so the
                checkpoint a rerun resumes from stays the last good one.
        """
        arrays = _arrays(state)
        bad = [key for key, array in arrays.items()
               if array.dtype.kind == "f" and not np.all(np.isfinite(array))]
        if bad:
            raise TrainingError(f"train: {bad[0]} holds NaN or infinity at step {step}; "
                                f"{self._kept()}")
        name = f"ckpt-{step:08d}"
        with atomic_path(self.directory / name) as tmp:
            tmp.mkdir()
            save_npz(tmp / "state.npz", **arrays)
            (tmp / "train_log.csv").write_text(train_log.rows_to_csv(log_rows))
            write_json(tmp / "meta.json", {"step": step, "seconds": seconds,
                                           "fingerprint": fingerprint})
        write_json(self.directory / POINTER, {"checkpoint": name, "step": step})
        for old in self.directory.glob("ckpt-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)

    def _kept(self) -> str:
        step = self.latest_step()
        if step is None:
            return "no checkpoint is kept"
        return f"the checkpoint at step {step} is kept"

    def restore(self, state: dict[str, list], fingerprint: dict) -> Restored | None:
        """Loads the latest checkpoint into `state`'s variables if it was made by this run.

        Returns None, after saying why, when there is nothing to resume; a checkpoint made
        with other params, data or variables is then discarded together with its snapshots.
        """
        pointer = self.directory / POINTER
        if not pointer.exists():
            self._clear()
            return None
        try:
            folder = self.directory / json.loads(pointer.read_text())["checkpoint"]
            meta = json.loads((folder / "meta.json").read_text())
        except (OSError, ValueError, KeyError) as error:
            logger.warning("checkpoint in %s is unreadable (%s): starting fresh",
                           self.directory, error)
            self._clear()
            return None
        differences = _differences(meta["fingerprint"], fingerprint)
        if differences:
            logger.warning("the checkpoint at step %d was made with other params or data (%s): "
                           "starting fresh", meta["step"], "; ".join(differences[:5]))
            self._clear()
            return None
        with np.load(folder / "state.npz", allow_pickle=False) as saved:
            problems = _layout_differences(saved, state)
            if problems:
                logger.warning("the checkpoint at step %d does not fit this run's variables "
                               "(%s): starting fresh", meta["step"], "; ".join(problems[:3]))
                self._clear()
                return None
            for owner, variables in state.items():
                for i, variable in enumerate(variables):
                    variable.assign(saved[f"{owner}/{i}"])
        rows = train_log.csv_to_rows((folder / "train_log.csv").read_text())
        return Restored(step=meta["step"], log_rows=rows, seconds=meta["seconds"])

    def _clear(self) -> None:
        # Only what a store writes is here (see _check_owned), and only that is removed.
        if not self.directory.is_dir():
            return
        for path in self.directory.iterdir():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()

    def write_snapshot(self, step: int, images: np.ndarray) -> None:
        """Saves one training snapshot beside the checkpoints."""
        snapshots.write_snapshot(self.snapshot_dir, step, images)

    def snapshots(self, up_to: int) -> dict[int, np.ndarray]:
        """Reads the snapshots up to step `up_to`, removing later ones a crash left behind."""
        found = snapshots.read_snapshots(self.snapshot_dir)
        for step in [step for step in found if step > up_to]:
            snapshots.snapshot_path(self.snapshot_dir, step).unlink()
            del found[step]
        return found
