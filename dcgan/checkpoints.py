"""Training checkpoints that survive kill -9: complete directories behind an atomic pointer."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcgan import snapshots, train_log
from dcgan.artifacts import atomic_path, save_npz, write_json

logger = logging.getLogger(__name__)

POINTER = "latest.json"


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


class CheckpointStore:
    """Keeps the latest checkpoint and the training snapshots under one directory.

    Each checkpoint is written as a complete directory under a temporary name and renamed into
    place; only then does the pointer file, itself replaced atomically, name it. A run killed
    at any moment therefore finds either the previous checkpoint or the new one, whole.
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.snapshot_dir = self.directory / "snapshots"

    def save(self, state: dict[str, list], fingerprint: dict, step: int,
             log_rows: list[dict], seconds: float) -> None:
        name = f"ckpt-{step:08d}"
        with atomic_path(self.directory / name) as tmp:
            tmp.mkdir()
            arrays = {f"{owner}/{i}": np.asarray(variable.numpy())
                      for owner, variables in state.items()
                      for i, variable in enumerate(variables)}
            save_npz(tmp / "state.npz", **arrays)
            (tmp / "train_log.csv").write_text(train_log.rows_to_csv(log_rows))
            write_json(tmp / "meta.json", {"step": step, "seconds": seconds,
                                           "fingerprint": fingerprint})
        write_json(self.directory / POINTER, {"checkpoint": name, "step": step})
        for old in self.directory.glob("ckpt-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)

    def restore(self, state: dict[str, list], fingerprint: dict) -> Restored | None:
        """Loads the latest checkpoint into `state`'s variables if it was made by this run.

        Returns None, after saying why, when there is nothing to resume; a checkpoint made
        with other params or data is then discarded together with its snapshots.
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
        with np.load(folder / "state.npz", allow_pickle=False) as arrays:
            for owner, variables in state.items():
                for i, variable in enumerate(variables):
                    variable.assign(arrays[f"{owner}/{i}"])
        rows = train_log.csv_to_rows((folder / "train_log.csv").read_text())
        return Restored(step=meta["step"], log_rows=rows, seconds=meta["seconds"])

    def _clear(self) -> None:
        if self.directory.exists():
            shutil.rmtree(self.directory)

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
