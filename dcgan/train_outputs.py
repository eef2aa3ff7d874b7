"""The train stage's outputs: the networks, the log, the snapshots and the resolved recipe."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

from dcgan import snapshots, train_log
from dcgan.artifacts import atomic_path, write_json
from dcgan.errors import DataError, one_line

logger = logging.getLogger(__name__)

GENERATOR = "generator.keras"
DISCRIMINATOR = "discriminator.keras"
LOG = "train_log.csv"
SNAPSHOTS = "snapshots"
RECIPE = "recipe.json"


def save_outputs(result, out_dir: str | os.PathLike) -> None:
    """Writes a training.TrainResult: networks, log, snapshots and the resolved recipe.

    The directory is written whole under a temporary name and renamed into place, so it exists
    only once training has completed.
    """
    gan = result.gan
    gan.refresh_sampler_statistics()
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        gan.sampler.save(tmp / GENERATOR)
        gan.discriminator.save(tmp / DISCRIMINATOR)
        (tmp / LOG).write_text(train_log.rows_to_csv(result.log_rows))
        for step, images in sorted(result.snapshots.items()):
            snapshots.write_snapshot(tmp / SNAPSHOTS, step, images)
        steps = gan.train_params.iterations
        write_json(tmp / RECIPE, {
            "model": dataclasses.asdict(gan.model_params),
            "train": dataclasses.asdict(gan.train_params),
            "engine": gan.engine.describe(),
            "generator": "exponential moving average" if gan.ema_generator else "trained",
            "seconds": round(result.seconds, 1),
            "images_per_second": round(gan.train_params.images_seen(steps) / result.seconds, 1),
        })
    logger.info("wrote %s", out_dir)


def read_recipe(models_dir: str | os.PathLike) -> dict:
    """Reads the resolved recipe the train stage wrote beside the networks.

    Raises:
        DataError: the file is missing or not valid JSON.
    """
    path = Path(models_dir) / RECIPE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run the train stage first") from None
    except ValueError as error:
        raise DataError(f"{path}: not valid JSON ({one_line(error)})") from None
