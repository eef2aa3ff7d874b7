"""Image grids that the report shows."""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

from dcgan.artifacts import write_bytes

PAD = 2
SCALE = 2


def image_grid(images: np.ndarray, rows: int, cols: int, pad: int = PAD) -> np.ndarray:
    """Lays up to rows*cols uint8 images out row by row on a white background."""
    if len(images) > rows * cols:
        raise ValueError(f"{len(images)} images do not fit a {rows}x{cols} grid")
    height, width = images.shape[1:3]
    grid = np.full((rows * (height + pad) + pad, cols * (width + pad) + pad, 3), 255, np.uint8)
    for i, image in enumerate(images):
        top = pad + (i // cols) * (height + pad)
        left = pad + (i % cols) * (width + pad)
        grid[top:top + height, left:left + width] = image
    return grid


def save_png(path: str | os.PathLike, image: np.ndarray, scale: int = SCALE) -> None:
    """Writes a uint8 RGB array as PNG, enlarged `scale` times without smoothing."""
    picture = Image.fromarray(image)
    if scale != 1:
        picture = picture.resize((picture.width * scale, picture.height * scale),
                                 Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    write_bytes(path, buffer.getvalue())


def progress_grid(snapshots: dict[int, np.ndarray], max_columns: int = 10) -> np.ndarray:
    """Rows are the fixed latent vectors, columns evenly spaced snapshots ending at the last."""
    steps = sorted(snapshots)
    if len(steps) > max_columns:
        picks = np.linspace(0, len(steps) - 1, max_columns).round().astype(int)
        steps = [steps[i] for i in picks]
    columns = np.stack([snapshots[step] for step in steps], axis=1)  # (latents, steps, ...)
    return image_grid(columns.reshape(-1, *columns.shape[2:]), len(columns), len(steps))


def pairs_grid(left: np.ndarray, right: np.ndarray, pairs_per_row: int = 4) -> np.ndarray:
    """Puts each left image beside its right partner, several pairs to a row."""
    interleaved = np.stack([left, right], axis=1).reshape(-1, *left.shape[1:])
    cols = 2 * pairs_per_row
    return image_grid(interleaved, -(-len(interleaved) // cols), cols)

