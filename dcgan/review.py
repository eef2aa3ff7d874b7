"""Two commits' committed results side by side, for reviewing a change."""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcgan import montage, plots, staleness
from dcgan.artifacts import write_text
from dcgan.cli import run
from dcgan.errors import DataError
from dcgan.evaluation import METRICS
from dcgan.grids import save_png
from dcgan.report import format_number, with_error
from dcgan.revisions import Revision, repository_root

log = logging.getLogger("dcgan.review")

# Both sides are read from what their commits hold, never from the work tree, and nothing is
# rerun: the review shows what merging would bring in, whatever the work tree holds.

REPORTS = "reports"
PARAMS_FILE = "params.yaml"
# What a side is read from; the work tree's own state of these is left out of the review.
READ_FROM = (PARAMS_FILE, "dvc.lock", REPORTS)
LOSS_COLUMNS = ("step", "d_loss", "g_loss")
IMAGES = ("samples.png", "losses.png", "progress.png")


@dataclass
class Side:
    """One commit's committed results; a missing file leaves its field None."""

    name: str
    revision: Revision
    metrics: dict | None
    params: dict
    losses: object | None
    samples: np.ndarray | None
    progress: np.ndarray | None
    freshness: staleness.Staleness

    @property
    def label(self) -> str:
        return f"{self.name} {self.revision.short}"

    @property
    def where(self) -> str:
        return f"`{self.revision.ref}` ({self.revision.short})"


def _report_path(name: str) -> str:
    return f"{REPORTS}/{name}"


def _read_metrics(revision: Revision) -> dict | None:
    data = revision.read(_report_path("metrics.json"))
    if data is None:
        return None
    try:
        metrics = json.loads(data)
    except ValueError as error:
        raise DataError(f"{_report_path('metrics.json')} at {revision.ref} "
                        f"({revision.short}): not valid JSON ({error})") from None
    if not isinstance(metrics, dict):
        raise DataError(f"{_report_path('metrics.json')} at {revision.ref} "
                        f"({revision.short}): expected a JSON object of metrics")
    return metrics


def _read_losses(revision: Revision):
    import pandas

    data = revision.read(_report_path("losses.csv"))
    if data is None:
        return None
    try:
        losses = pandas.read_csv(io.BytesIO(data))
    except (ValueError, pandas.errors.ParserError):
        return None
    if any(column not in losses.columns for column in LOSS_COLUMNS) or losses.empty:
        return None
    return losses


def _read_image(revision: Revision, name: str) -> np.ndarray | None:
    data = revision.read(_report_path(name))
    if data is None:
        return None
    return montage.decode_png(data, f"{_report_path(name)} at {revision.ref} "
                                    f"({revision.short})")


def read_side(name: str, revision: Revision) -> Side:
    """Reads what one commit holds of the pipeline's results.

    Raises:
        DataError: a committed metrics.json, image or YAML file is unreadable.
    """
    params = revision.read_yaml(PARAMS_FILE)
    return Side(
        name=name, revision=revision, metrics=_read_metrics(revision),
        params=staleness.flatten(params) if isinstance(params, dict) else {},
        losses=_read_losses(revision), samples=_read_image(revision, "samples.png"),
        progress=_read_image(revision, "progress.png"), freshness=staleness.check(revision))


def _duration(seconds) -> str:
    if not _is_number(seconds):
        return "n/a"
    if seconds < 60:
        return f"{seconds:.3g} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{seconds:.0f} s ({minutes} min {rest} s)"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _change(old, new) -> str:
    if not _is_number(old) or not _is_number(new):
        return "n/a"
    delta = new - old
    text = f"{delta:+.4g}"
    if old:
        text += f" ({100 * delta / abs(old):+.1f} %)"
    return text


# A change smaller than this many standard errors of the difference is called noise: there is
# about one chance in twenty that other draws of samples from the same two generators would
# differ by more. It says nothing of the spread between training runs (seeds).
NOISE_ERRORS = 2.0


def verdict(better: str, old, new, old_floor, new_floor, old_error=None, new_error=None,
            old_floor_error=None, new_floor_error=None) -> str:
    """Whether the head's value improves on the base's, by the metric's direction.

    Args:
        better: "lower", "higher", or "near the floor": closer to that side's own floor is
            better.
        old, new: The base's and the head's values (None when not computed).
        old_floor, new_floor: The floor each side scored.
        old_error, new_error: The standard errors of the two values, where they are means
            over draws; a change within NOISE_ERRORS of the difference's error is noise.
        old_floor_error, new_floor_error: The floors' standard errors. Where both are
            given, floors further apart than NOISE_ERRORS of their difference's error say the
            two sides measured the metric in different ways (other data, other evaluate
            params, another version of the metric), so a "lower" or "higher" metric's values
            are not compared.

    Returns:
        "better", "worse", "same", "within noise", "floor moved" or "n/a".

    Raises:
        ValueError: an unknown direction.
    """
    if better not in ("lower", "higher", "near the floor"):
        raise ValueError(f"unknown direction {better!r}")
    if not _is_number(old) or not _is_number(new):
        return "n/a"
    if (better != "near the floor" and _is_number(old_floor_error)
            and _is_number(new_floor_error)
            and _beyond_noise(old_floor, new_floor, old_floor_error, new_floor_error)):
        return "floor moved"
    if better == "higher":
        old, new = -old, -new
    elif better == "near the floor":
        if not _is_number(old_floor) or not _is_number(new_floor):
            return "n/a"
        old, new = abs(old - old_floor), abs(new - new_floor)
    if new == old:
        return "same"
    if better != "near the floor" and not _beyond_noise(old, new, old_error, new_error):
        return "within noise"
    return "better" if new < old else "worse"


def _beyond_noise(old, new, old_error, new_error) -> bool:
    """Whether two values differ by NOISE_ERRORS standard errors of their difference or more;
    True for any difference where either value, or its error, is missing."""
    if not all(_is_number(value) for value in (old, new, old_error, new_error)):
        return _is_number(old) and _is_number(new) and old != new
    return abs(new - old) >= NOISE_ERRORS * float(np.hypot(old_error, new_error))


VERDICT_MARKS = {"better": "✅ better", "worse": "❌ worse", "same": "same",
                 "within noise": "≈ within noise", "floor moved": "⚠️ floor moved",
                 "n/a": "n/a"}


def params_changes(base: Side, head: Side) -> list[tuple[str, object, object]]:
    """(key, base value, head value) for every flattened param that differs, sorted by key."""
    changes = []
    for key in sorted(set(base.params) | set(head.params)):
        old = base.params.get(key, staleness.MISSING)
        new = head.params.get(key, staleness.MISSING)
        if old is staleness.MISSING or new is staleness.MISSING or old != new:
            changes.append((key, old, new))
    return changes


def _stale_banner(head: Side) -> list[str]:
    if head.freshness.stale:
        lines = ["> [!WARNING]",
                 f"> **The head's reports are stale.** {head.where} commits `{REPORTS}/` that "
                 "were not made from its own committed params and code, so the numbers and "
                 "pictures below may not show this change. Run `dvc repro` and commit "
                 f"`dvc.lock` and `{REPORTS}/`.", ">"]
        lines += [f"> - {reason}" for reason in head.freshness.reasons]
        return lines + [""]
    if head.freshness.unchecked:
        return ["> [!NOTE]",
                f"> Whether the head's reports are up to date could not be checked: "
                f"{head.freshness.unchecked}.", ""]
    return []


def _metric_table(base: Side | None, head: Side) -> list[str]:
    new = head.metrics
    if base is None:
        lines = ["| metric | head | real data (floor) | better |", "| --- | --- | --- | --- |"]
        for key, (label, better, _) in METRICS.items():
            lines.append(f"| {label} | {with_error(new, key)} "
                         f"| {with_error(new.get('floor') or {}, key)} | {better} |")
        return lines
    old = base.metrics
    lines = ["Better or worse compares the head with the base: for *lower* metrics the lower "
             "value is better; for *near the floor* ones, the value nearer its own side's floor "
             "(what real data scores). Where both sides give a standard error (± after the "
             f"value), a change smaller than {NOISE_ERRORS:g} standard errors of the difference "
             "is marked as within noise; other metrics have no noise estimate, and small moves "
             "in them may be chance. Where both floors give an error and differ by that much "
             "or more, the sides measured the metric in different ways (other data, other "
             "evaluate params, another version of the metric) and their values are not "
             "compared: floor moved.",
             "", "| metric | base | head | change | floor (base → head) | better | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for key, (label, better, _) in METRICS.items():
        old_floors, new_floors = old.get("floor") or {}, new.get("floor") or {}
        old_floor, new_floor = old_floors.get(key), new_floors.get(key)
        floor = (with_error(new_floors, key) if old_floor == new_floor
                 else f"{with_error(old_floors, key)} → {with_error(new_floors, key)}")
        mark = VERDICT_MARKS[verdict(better, old.get(key), new.get(key), old_floor, new_floor,
                                     old.get(f"{key}_error"), new.get(f"{key}_error"),
                                     old_floors.get(f"{key}_error"),
                                     new_floors.get(f"{key}_error"))]
        lines.append(f"| {label} | {with_error(old, key)} | {with_error(new, key)} "
                     f"| {_change(old.get(key), new.get(key))} | {floor} | {better} | {mark} |")
    return lines


def _run_table(base: Side | None, head: Side) -> list[str]:
    sides = [side for side in (base, head) if side is not None]
    seconds = [side.metrics.get("train_seconds") for side in sides]
    rows = {
        "training time": [_duration(value) for value in seconds],
        "samples scored": [format_number(side.metrics.get("num_samples")) for side in sides],
        "last logged losses (D / G)": [f"{format_number(side.metrics.get('d_loss'))} / "
                                       f"{format_number(side.metrics.get('g_loss'))}"
                                       for side in sides],
        "Inception metrics": [str(side.metrics.get("inception", "n/a")) for side in sides],
    }
    if len(seconds) == 2 and all(map(_is_number, seconds)) and seconds[0] > 0:
        rows["training time"][1] += f" ({100 * (seconds[1] - seconds[0]) / seconds[0]:+.0f} %)"
    lines = ["| | " + " | ".join(side.label for side in sides) + " |",
             "| --- |" + " --- |" * len(sides)]
    lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows.items()]
    return lines


def _figure_section(title: str, caption: str, name: str, written: set[str],
                    missing: list[str], note: str = "") -> list[str]:
    lines = [f"## {title}", ""]
    if missing:
        lines += [f"No `{REPORTS}/{name}` on the {' or the '.join(missing)}.", ""]
    if name in written:
        if note:
            lines += [note, ""]
        lines += [f"![{caption}]({name})", ""]
    return lines


def render(base: Side, head: Side, written: set[str], uncommitted: list[str]) -> str:
    """The review as GitHub markdown, linking only the images in `written`."""
    compared = base if base.metrics is not None else None
    lines = [f"# Review: {base.where} → {head.where}", ""]
    lines += _stale_banner(head)
    lines += [f'Base: {base.where} "{base.revision.subject}". Head: {head.where} '
              f'"{head.revision.subject}". Both are read from their commits (`{PARAMS_FILE}`, '
              f"`dvc.lock`, `{REPORTS}/`) as committed; nothing was rerun.", ""]
    if uncommitted:
        shown = ", ".join(f"`{path}`" for path in uncommitted[:5])
        more = f" and {len(uncommitted) - 5} more" if len(uncommitted) > 5 else ""
        lines += [f"Left out: the work tree's uncommitted changes to {shown}{more}.", ""]
    if compared is None:
        lines += [f"The base {base.where} has no committed `{REPORTS}/metrics.json` (a first "
                  "run): the head is shown alone.", ""]
    elif base.freshness.stale:
        lines += [f"The base's reports are stale too ({len(base.freshness.reasons)} "
                  f"finding(s); first: {base.freshness.reasons[0]}).", ""]

    lines += ["## Params that changed", ""]
    changes = params_changes(base, head)
    if changes:
        lines += ["| param | base | head |", "| --- | --- | --- |"]
        lines += [f"| `{key}` | {staleness.format_value(old)} | {staleness.format_value(new)} |"
                  for key, old, new in changes]
    else:
        lines.append(f"No value in `{PARAMS_FILE}` changed.")
    lines += ["", "## Metrics", ""] + _metric_table(compared, head)
    lines += ["", "## Training", ""] + _run_table(compared, head) + [""]

    sides = [side for side in (compared, head) if side is not None]

    def missing(field: str) -> list[str]:
        return [side.name for side in sides if getattr(side, field) is None]

    def both(field: str) -> bool:
        return len(sides) == 2 and not missing(field)

    lines += _figure_section(
        "Samples", " and ".join(side.label for side in sides), "samples.png", written,
        missing("samples"), "Left: base; right: head." if both("samples") else "")
    lines += _figure_section(
        "Losses", "Discriminator and generator losses", "losses.png", written,
        missing("losses"),
        f"Lines: exponential moving average with weight {plots.SMOOTHING}, debiased as "
        "TensorBoard does; faint: the raw values as logged."
        + (" Base grey and dashed, head blue." if both("losses") else ""))
    lines += _figure_section(
        "Progress over training", "Fixed latent vectors over training", "progress.png",
        written, missing("progress"),
        "Rows: fixed latent vectors; columns: snapshots over training"
        + ("; base above, head below." if both("progress") else "."))
    return "\n".join(lines)


def write_review(root: str | Path, base_ref: str, head_ref: str, out_dir: str | Path) -> Path:
    """Writes review.md and the images it links into `out_dir`; returns review.md's path.

    Raises:
        GitError: a ref names no commit, or `root` is not in a git repository.
        DataError: the head commits no reports/metrics.json, or a committed file is corrupt.
    """
    root = repository_root(root)
    base = read_side("base", Revision(root, base_ref))
    head = read_side("head", Revision(root, head_ref))
    if head.metrics is None:
        raise DataError(f"the head {head_ref} ({head.revision.short}) commits no "
                        f"{_report_path('metrics.json')}: run `dvc repro` and commit "
                        f"{REPORTS}/ before reviewing")
    compared = base if base.metrics is not None else None
    sides = [side for side in (compared, head) if side is not None]

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = set()
    samples = [(side.label, side.samples) for side in sides if side.samples is not None]
    if samples:
        save_png(out_dir / "samples.png", montage.labelled(samples, "row"), scale=1)
        written.add("samples.png")
    losses = {side.label: side.losses for side in sides if side.losses is not None}
    if losses:
        plots.save_loss_comparison(out_dir / "losses.png", losses)
        written.add("losses.png")
    progress = [(side.label, side.progress) for side in sides if side.progress is not None]
    if progress:
        save_png(out_dir / "progress.png", montage.labelled(progress, "column"), scale=1)
        written.add("progress.png")
    # An image of an earlier review that this one does not link would mislead whoever
    # uploads the folder.
    for name in set(IMAGES) - written:
        (out_dir / name).unlink(missing_ok=True)

    uncommitted = []
    if head.revision.is_checked_out():
        uncommitted = head.revision.differs_in_work_tree(READ_FROM)
    path = out_dir / "review.md"
    write_text(path, render(base, head, written, uncommitted) + "\n")
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description="Writes a side-by-side review of two commits' committed results.")
    parser.add_argument("--base", required=True,
                        help="the commit the change is measured against, e.g. origin/main")
    parser.add_argument("--head", default="HEAD",
                        help="the commit under review (default: HEAD, as committed)")
    parser.add_argument("--out", default="review", help="folder for review.md and its images")
    args = parser.parse_args(argv)
    path = write_review(".", args.base, args.head, args.out)
    log.info("wrote %s", path)


if __name__ == "__main__":
    sys.exit(run(main))
