"""Drawing images from a trained generator, each one reproducible on its own."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from dcgan import pixels
from dcgan.errors import DataError, one_line
from dcgan.progress import progress_bar


def sample_latents(seed: int, indices: np.ndarray, input_size: int) -> np.ndarray:
    """Input vector i depends only on (seed, i), never on the batch it is drawn in."""
    return np.stack([np.random.default_rng([seed, int(i)]).standard_normal(input_size)
                     for i in indices]).astype(np.float32)


def load_generator(path: str | os.PathLike):
    """Loads a saved generator in Keras safe mode.

    Raises:
        DataError: the file is missing, is not a Keras model, or its input/output shapes are
            not those of an image generator.
    """
    import keras

    import dcgan.models  # noqa: F401 (registers the project's layers for deserialisation)

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: generator file not found; run the train stage first")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not a Keras model file (a .keras file is a zip archive); "
                        "run the train stage again")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as error:
        first_line = one_line(str(error).strip().splitlines()[0] if str(error).strip() else error)
        raise DataError(f"{path}: not a readable Keras model ({first_line})") from None
    if (len(model.inputs) != 1 or len(model.input_shape) != 2
            or tuple(model.output_shape[1:]) != pixels.IMAGE_SHAPE):
        raise DataError(f"{path}: expected a generator from (N, latent_dim) to "
                        f"(N, {', '.join(map(str, pixels.IMAGE_SHAPE))}), "
                        f"found {model.input_shape} -> {model.output_shape}")
    return model


def generate_images(generator, latents: np.ndarray, pixel_range: str) -> np.ndarray:
    """The generator's images of `latents` in inference mode, as uint8."""
    output = np.asarray(generator(latents, training=False), dtype=np.float32)
    return pixels.to_uint8(output, pixel_range)


def draw_samples(generator, num_samples: int, seed: int, batch_size: int,
                 pixel_range: str) -> tuple[np.ndarray, np.ndarray]:
    """Returns (uint8 images, latents) for samples 0 .. num_samples-1."""
    input_size = generator.input_shape[1]
    images, latents = [], []
    for start in progress_bar(range(0, num_samples, batch_size), desc="sample", unit="batch"):
        batch = sample_latents(seed, np.arange(start, min(start + batch_size, num_samples)),
                               input_size)
        images.append(generate_images(generator, batch, pixel_range))
        latents.append(batch)
    return np.concatenate(images), np.concatenate(latents)
