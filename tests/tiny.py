"""Tiny params and data for fast runs: a recipe from recipes/ shrunk to a 4-filter network and
6 steps, random images to train it on, and the weights it trains, to compare."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import yaml

from dcgan.params import parse_section, read_params_file

RECIPES = Path(__file__).resolve().parents[1] / "recipes"

TINY = {
    "prepare": {"source": "cifar10", "url": "file:///nonexistent", "md5": "0" * 32,
                "class_name": "frog", "images_dir": None, "holdout_fraction": 0.1, "seed": 0},
    "model": {},
    "train": {"seed": 0, "log_every": 1, "snapshot_every": 2, "checkpoint_every": 3,
              "deterministic": True, "jit_compile": "off", "mixed_precision": "off",
              "distribute": "off"},
    "sample": {"num_samples": 24, "seed": 0, "batch_size": 10},
    "evaluate": {"inception": "off", "seed": 0, "swd_patches_per_image": 8,
                 "swd_projections": 32, "swd_draw_size": 8, "inception_batch_size": 8,
                 "grid_size": 4},
}
SHRINK = {"model": {"latent_dim": 8, "width": 4}, "train": {"iterations": 6, "batch_size": 8}}


def tiny_params(recipe: str = "chollet", late: bool = False, **overrides) -> dict:
    """A whole params.yaml: `recipe` shrunk to tiny sizes, then overrides given as
    section__key=value, e.g. train__iterations=3.

    The recipe's late batch is kept, at the tiny batch's scale, only with `late`: each batch
    size traces a training step of its own, which costs a few seconds a run, and most tests
    are about something else. Overrides may set a late batch of their own either way.
    """
    params = copy.deepcopy(TINY)
    values = read_params_file(RECIPES / f"{recipe}.yaml")  # YAML 1.2, as the product reads it
    for section in ("model", "train"):
        params[section] = {**values[section], **SHRINK[section], **params[section]}
    if params["train"]["ema_bn_batches"] > 0:
        params["train"]["ema_bn_batches"] = 2  # a refresh of two batches, not the recipe's
    if late and params["train"]["late_batch_size"] > 0:
        params["train"]["late_batch_size"] = (values["train"]["late_batch_size"]
                                              * SHRINK["train"]["batch_size"]
                                              // values["train"]["batch_size"])
    else:
        params["train"].update(late_share=0.0, late_batch_size=0)
    for name, value in overrides.items():
        section, key = name.split("__")
        params[section][key] = value
    return params


def write_params(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def recipe(name: str = "chollet", **overrides):
    """The model and train sections of tiny_params(name, **overrides), parsed."""
    params = tiny_params(name, **overrides)
    return parse_section("model", params["model"]), parse_section("train", params["train"])


def random_images(count: int = 64, seed: int = 0) -> np.ndarray:
    """`count` 32x32 RGB images of uniform random bytes."""
    return np.random.default_rng(seed).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)


def weights(model) -> list[np.ndarray]:
    """A model's trainable weights, as arrays."""
    return [v.numpy() for v in model.trainable_variables]


def same(first, second) -> bool:
    """Whether two lists of arrays are equal, array by array."""
    return all(np.array_equal(a, b) for a, b in zip(first, second))
