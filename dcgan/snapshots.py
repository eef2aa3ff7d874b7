"""Training snapshots: the images of a few fixed latent vectors, one PNG strip per step."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
from PIL import Image

from dcgan.artifacts import write_bytes

SNAPSHOT_LATENTS = 8
PATTERN = re.compile(r"step_(\d+)\.png")


def snapshot_latents(seed: int, input_size: int) -> np.ndarray:
    """The fixed input vectors whose images show how the generator grows over training."""
    return np.random.default_rng([seed, 1]).standard_normal(
        (SNAPSHOT_LATENTS, input_size)).astype(np.float32)


def snapshot_path(directory: str | os.PathLike, step: int) -> Path:
    return Path(directory) / f"step_{step:08d}.png"


def write_snapshot(directory: str | os.PathLike, step: int, images: np.ndarray) -> None:
    """Saves one snapshot atomically: the images side by side in one PNG."""
    strip = np.concatenate(list(images), axis=1)
    buffer = io.BytesIO()
    Image.fromarray(strip).save(buffer, format="PNG")
    write_bytes(snapshot_path(directory, step), buffer.getvalue())


def read_snapshots(directory: str | os.PathLike) -> dict[int, np.ndarray]:
    """Maps each snapshot's step to its images, (latents, 32, 32, 3) uint8."""
    found = {}
    for path in sorted(Path(directory).glob("step_*.png")):
        match = PATTERN.fullmatch(path.name)
        if match:
            strip = np.asarray(Image.open(path).convert("RGB"))
            found[int(match.group(1))] = np.stack(
                np.split(strip, strip.shape[1] // strip.shape[0], axis=1))
    return found
