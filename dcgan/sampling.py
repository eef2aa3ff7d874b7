"""Drawing images from a trained generator, each one reproducible on its own."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dcgan import pixels
from dcgan.errors import DataError


def sample_latents(seed: int, indices: np.ndarray, latent_dim: int) -> np.ndarray:
    """Latent vector i depends only on (seed, i), never on the batch it is drawn in."""
    return np.stack([np.random.default_rng([seed, int(i)]).standard_normal(latent_dim)
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
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
        raise DataError(f"{path}: not a readable Keras model ({first_line})") from None
    if len(model.inputs) != 1 or len(model.input_shape) != 2 or model.output_shape[1:] != (
            32, 32, 3):
        raise DataError(f"{path}: expected a generator from (N, latent_dim) to (N, 32, 32, 3), "
                        f"found {model.input_shape} -> {model.output_shape}")
    return model


def read_recipe(models_dir: str | os.PathLike) -> dict:
    path = Path(models_dir) / "recipe.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run the train stage first") from None
    except ValueError as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None


def render(generator, latents: np.ndarray, pixel_range: str) -> np.ndarray:
    """The generator's images of `latents` in inference mode, as uint8."""
    output = np.asarray(generator(latents, training=False), dtype=np.float32)
    return pixels.to_uint8(output, pixel_range)


def generate(generator, num_samples: int, seed: int, batch_size: int,
             pixel_range: str) -> tuple[np.ndarray, np.ndarray]:
    """Returns (uint8 images, latents) for samples 0 .. num_samples-1."""
    latent_dim = generator.input_shape[1]
    images, latents = [], []
    starts = range(0, num_samples, batch_size)
    for start in tqdm(starts, desc="sample", unit="batch", disable=not _on_terminal()):
        batch = sample_latents(seed, np.arange(start, min(start + batch_size, num_samples)),
                               latent_dim)
        images.append(render(generator, batch, pixel_range))
        latents.append(batch)
    return np.concatenate(images), np.concatenate(latents)


def _on_terminal() -> bool:
    import sys

    return sys.stderr.isatty()
