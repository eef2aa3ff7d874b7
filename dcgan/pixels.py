"""The image format every stage exchanges, uint8 RGB 32x32, and the float ranges networks use."""

from __future__ import annotations

import numpy as np

IMAGE_SIZE = 32
CHANNELS = 3
IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, CHANNELS)


def to_float(images, pixel_range: str):
    """uint8 -> float32 in [-1, 1] ("symmetric", matching tanh) or [0, 1] ("unit", the book's).

    Works on numpy arrays and TensorFlow tensors alike.
    """
    import tensorflow as tf

    images = tf.cast(images, tf.float32) / 255.0
    return images * 2.0 - 1.0 if pixel_range == "symmetric" else images


def to_uint8(images: np.ndarray, pixel_range: str) -> np.ndarray:
    """Generator output -> uint8, clipping what falls outside the range."""
    if pixel_range == "symmetric":
        images = (images + 1.0) / 2.0
    return np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
