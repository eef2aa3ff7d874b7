"""Pictures laid side by side or one above the other, each under its label."""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from dcgan.errors import DataError

GAP = 16
MARGIN = 6
FONT_SIZE = 16


def decode_png(data: bytes, where: str) -> np.ndarray:
    """Decodes PNG bytes into a uint8 RGB array.

    Raises:
        DataError: the bytes are not a readable image; `where` names them in the message.
    """
    try:
        with Image.open(io.BytesIO(data)) as picture:
            return np.asarray(picture.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataError(f"{where}: not a readable PNG image ({error})") from None


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow before 10.1 has one bitmap size only.
        return ImageFont.load_default()


def _label(text: str, width: int, font) -> np.ndarray:
    left, top, right, bottom = font.getbbox(text)
    strip = Image.new("RGB", (max(width, right - left + 2 * MARGIN),
                              bottom - top + 2 * MARGIN), "white")
    ImageDraw.Draw(strip).text((MARGIN - left, MARGIN - top), text, fill="black", font=font)
    return np.asarray(strip)


def _pad(image: np.ndarray, height: int, width: int) -> np.ndarray:
    padded = np.full((height, width, 3), 255, np.uint8)
    padded[:image.shape[0], :image.shape[1]] = image
    return padded


def labelled(panels: Sequence[tuple[str, np.ndarray]], direction: str = "row",
             font_size: int = FONT_SIZE) -> np.ndarray:
    """Lays out uint8 RGB images, each with its label above it, on a white background.

    Args:
        panels: (label, image) pairs, in order.
        direction: "row" puts them side by side, "column" one above the other.
        font_size: The labels' size in pixels.

    Raises:
        ValueError: no panels, or an unknown direction.
    """
    if not panels:
        raise ValueError("labelled: no panels to lay out")
    if direction not in ("row", "column"):
        raise ValueError(f"labelled: direction must be 'row' or 'column', got {direction!r}")
    font = _font(font_size)
    columns = []
    for text, image in panels:
        label = _label(text, image.shape[1], font)
        width = max(label.shape[1], image.shape[1])
        columns.append(np.concatenate([_pad(label, label.shape[0], width),
                                       _pad(image, image.shape[0], width)]))
    if direction == "row":
        height = max(column.shape[0] for column in columns)
        gap = np.full((height, GAP, 3), 255, np.uint8)
        parts = [_pad(column, height, column.shape[1]) for column in columns]
        axis = 1
    else:
        width = max(column.shape[1] for column in columns)
        gap = np.full((GAP, width, 3), 255, np.uint8)
        parts = [_pad(column, column.shape[0], width) for column in columns]
        axis = 0
    laid = [parts[0]]
    for part in parts[1:]:
        laid += [gap, part]
    return np.concatenate(laid, axis=axis)
