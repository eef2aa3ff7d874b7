"""Tiny params for fast runs: a 4-filter network, a handful of steps."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

TINY = {
    "prepare": {"source": "cifar10", "url": "file:///nonexistent", "md5": "0" * 32,
                "class_name": "frog", "images_dir": None, "holdout_fraction": 0.1, "seed": 0},
    "model": {"preset": "chollet", "latent_dim": 8, "width": 4, "dropout": None,
              "spectral_norm": None},
    "train": {"iterations": 6, "batch_size": 8, "optimizer": None, "d_learning_rate": None,
              "g_learning_rate": None, "beta_1": None, "clipvalue": None, "loss": None,
              "label_noise": None, "pixel_range": None, "shuffle": None, "ema": None,
              "augment": None, "seed": 0, "log_every": 1, "snapshot_every": 2,
              "checkpoint_every": 3, "deterministic": True, "jit_compile": "off",
              "mixed_precision": "off", "distribute": "off"},
    "sample": {"num_samples": 24, "seed": 0, "batch_size": 10},
    "evaluate": {"inception": "off", "seed": 0, "swd_patches_per_image": 8,
                 "swd_projections": 32, "inception_batch_size": 8, "grid_size": 4},
}


def tiny_params(**overrides) -> dict:
    """TINY with overrides given as section__key=value, e.g. train__iterations=3."""
    params = copy.deepcopy(TINY)
    for name, value in overrides.items():
        section, key = name.split("__")
        params[section][key] = value
    return params


def write_params(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path
