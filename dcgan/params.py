"""Typed, validated params: one frozen dataclass per params.yaml section."""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from dcgan.errors import ParamsError, one_line

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
AUGMENT_POLICIES = ("color", "translation", "cutout")
SWITCH = ("auto", "on", "off")


def spec(*, choices=None, low=None, high=None, low_open=False, high_open=False,
         pattern=None, preset=False, doc=""):
    """Declares a params key: its allowed values and whether `null` means the preset's value."""
    return field(metadata=dict(choices=choices, low=low, high=high, low_open=low_open,
                               high_open=high_open, pattern=pattern, preset=preset, doc=doc))


@dataclass(frozen=True)
class PrepareParams:
    source: str = spec(choices=("cifar10", "images"))
    url: str = spec()
    md5: str = spec(pattern=r"[0-9a-f]{32}", doc="32 lowercase hex digits")
    class_name: str = spec(choices=CIFAR10_CLASSES)
    images_dir: Optional[str] = spec()
    holdout_fraction: float = spec(low=0.0, high=1.0, low_open=True, high_open=True)
    seed: int = spec(low=0)

    def validate(self) -> None:
        if self.source == "images" and not self.images_dir:
            raise ParamsError("prepare.images_dir: required when prepare.source is 'images'")


@dataclass(frozen=True)
class ModelParams:
    preset: str = spec(choices=("compact", "chollet"))
    latent_dim: Optional[int] = spec(low=1, preset=True)
    width: Optional[int] = spec(low=1, preset=True)
    dropout: Optional[float] = spec(low=0.0, high=1.0, high_open=True, preset=True)
    spectral_norm: Optional[bool] = spec(preset=True)


@dataclass(frozen=True)
class TrainParams:
    iterations: Optional[int] = spec(low=1, preset=True)
    batch_size: Optional[int] = spec(low=1, preset=True)
    optimizer: Optional[str] = spec(choices=("rmsprop", "adam"), preset=True)
    d_learning_rate: Optional[float] = spec(low=0.0, low_open=True, preset=True)
    g_learning_rate: Optional[float] = spec(low=0.0, low_open=True, preset=True)
    beta_1: Optional[float] = spec(low=0.0, high=1.0, high_open=True, preset=True)
    clipvalue: Optional[float] = spec(low=0.0, preset=True, doc="0 turns clipping off")
    loss: Optional[str] = spec(choices=("book", "nonsaturating", "hinge"), preset=True)
    label_noise: Optional[float] = spec(low=0.0, high=1.0, preset=True)
    pixel_range: Optional[str] = spec(choices=("symmetric", "unit"), preset=True)
    shuffle: Optional[bool] = spec(preset=True)
    ema: Optional[float] = spec(low=0.0, high=1.0, high_open=True, preset=True,
                                doc="0 turns the moving average off")
    augment: Optional[str] = spec(preset=True, doc="'none' or a comma list of "
                                  + ", ".join(AUGMENT_POLICIES))
    seed: int = spec(low=0)
    log_every: int = spec(low=1)
    snapshot_every: int = spec(low=1)
    checkpoint_every: int = spec(low=1)
    deterministic: bool = spec()
    jit_compile: str = spec(choices=SWITCH)
    mixed_precision: str = spec(choices=SWITCH)
    distribute: str = spec(choices=("auto", "off"))

    def validate(self) -> None:
        if self.augment is not None:
            names = [] if self.augment == "none" else self.augment.split(",")
            unknown = [n for n in names if n.strip() not in AUGMENT_POLICIES]
            if not names and self.augment != "none" or unknown:
                raise ParamsError(
                    f"train.augment: expected 'none' or a comma list of "
                    f"{', '.join(AUGMENT_POLICIES)}, found {self.augment!r}")

    @property
    def augment_policies(self) -> tuple[str, ...]:
        if not self.augment or self.augment == "none":
            return ()
        return tuple(name.strip() for name in self.augment.split(","))


@dataclass(frozen=True)
class SampleParams:
    num_samples: int = spec(low=1)
    seed: int = spec(low=0)
    batch_size: int = spec(low=1)


@dataclass(frozen=True)
class EvaluateParams:
    inception: str = spec(choices=("auto", "required", "off"))
    seed: int = spec(low=0)
    swd_patches_per_image: int = spec(low=1)
    swd_projections: int = spec(low=1)
    inception_batch_size: int = spec(low=1)
    grid_size: int = spec(low=1, high=32)


# The recipes a `model.preset` stands for. A null key in params.yaml takes the preset's value.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # Chollet, Deep Learning with Python, section 8.5, exactly as written there
    # (except pixel_range, see README).
    "chollet": {
        "model": dict(latent_dim=32, width=128, dropout=0.4, spectral_norm=False),
        "train": dict(iterations=10000, batch_size=20, optimizer="rmsprop",
                      d_learning_rate=0.0008, g_learning_rate=0.0004, beta_1=0.9,
                      clipvalue=1.0, loss="book", label_noise=0.05, pixel_range="symmetric",
                      shuffle=False, ema=0.0, augment="none"),
    },
    # A DCGAN sized for a CPU budget, with the levers that helped on the 5000 frogs: see the
    # README's "Recipes" section for what each one did.
    "compact": {
        "model": dict(latent_dim=128, width=32, dropout=0.0, spectral_norm=False),
        "train": dict(iterations=5000, batch_size=64, optimizer="adam",
                      d_learning_rate=0.0002, g_learning_rate=0.0002, beta_1=0.5,
                      clipvalue=0.0, loss="nonsaturating", label_noise=0.0,
                      pixel_range="symmetric", shuffle=True, ema=0.995,
                      augment="translation,cutout"),
    },
}

SECTIONS = {
    "prepare": PrepareParams,
    "model": ModelParams,
    "train": TrainParams,
    "sample": SampleParams,
    "evaluate": EvaluateParams,
}


def _describe(meta: dict, type_name: str) -> str:
    if meta["choices"]:
        return "one of " + ", ".join(repr(c) for c in meta["choices"])
    parts = [type_name]
    if meta["low"] is not None:
        parts.append(f"{'>' if meta['low_open'] else '>='} {meta['low']}")
    if meta["high"] is not None:
        parts.append(f"{'<' if meta['high_open'] else '<='} {meta['high']}")
    if meta["doc"]:
        parts.append(f"({meta['doc']})")
    return " ".join(parts)


def _check_value(key: str, value: Any, annotation: Any, meta: dict) -> Any:
    base = annotation
    optional = typing.get_origin(annotation) is typing.Union
    if optional:
        base = next(a for a in typing.get_args(annotation) if a is not type(None))
    type_name = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}[base]
    expected = _describe(meta, type_name)
    if value is None:
        if optional:
            return None
        raise ParamsError(f"{key}: expected {expected}, found null")
    if base is bool:
        ok = isinstance(value, bool)
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ParamsError(f"{key}: expected {expected}, found {value!r}")
    if meta["choices"] and value not in meta["choices"]:
        raise ParamsError(f"{key}: expected {expected}, found {value!r}")
    if meta["pattern"] and not re.fullmatch(meta["pattern"], value):
        raise ParamsError(f"{key}: expected {expected}, found {value!r}")
    low, high = meta["low"], meta["high"]
    if low is not None and (value < low or (meta["low_open"] and value == low)):
        raise ParamsError(f"{key}: expected {expected}, found {value!r}")
    if high is not None and (value > high or (meta["high_open"] and value == high)):
        raise ParamsError(f"{key}: expected {expected}, found {value!r}")
    return value


def parse_section(section: str, raw: Any, cls: type | None = None):
    """Turns one params.yaml section (a mapping) into its frozen dataclass.

    Raises:
        ParamsError: the section is missing or not a mapping, or a key is unknown, missing,
            of the wrong type or out of range. The message names the key.
    """
    cls = cls or SECTIONS[section]
    if not isinstance(raw, dict):
        raise ParamsError(f"{section}: expected a mapping of keys, found {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ParamsError(f"{section}.{unknown[0]}: unknown key; allowed keys: "
                          + ", ".join(fields))
    missing = [name for name in fields if name not in raw]
    if missing:
        raise ParamsError(f"{section}.{missing[0]}: missing key")
    values = {
        name: _check_value(f"{section}.{name}", raw[name], hints[name], f.metadata)
        for name, f in fields.items()
    }
    params = cls(**values)
    if hasattr(params, "validate"):
        params.validate()
    return params


def read_params_file(path: str | os.PathLike) -> dict:
    # YAML 1.2, as DVC reads and writes params.yaml: `off` stays a string after `-S`.
    from ruamel.yaml import YAML, YAMLError

    path = Path(path)
    try:
        data = YAML(typ="safe", pure=True).load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: params file not found") from None
    except YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML ({one_line(error)})") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of sections")
    return data


def load_section(path: str | os.PathLike, section: str):
    """Reads `section` of the params file at `path` into its dataclass."""
    data = read_params_file(path)
    if section not in data:
        raise ParamsError(f"{section}: missing section in {path}")
    return parse_section(section, data[section])


def resolve_preset(model: ModelParams, train: TrainParams) -> tuple[ModelParams, TrainParams]:
    """Fills every null preset-backed key with the value of `model.preset`."""
    preset = PRESETS[model.preset]

    def fill(params, section):
        values = {}
        for f in dataclasses.fields(params):
            value = getattr(params, f.name)
            if value is None and f.metadata["preset"]:
                value = preset[section][f.name]
            values[f.name] = value
        return dataclasses.replace(params, **values)

    return fill(model, "model"), fill(train, "train")


def load_recipe(path: str | os.PathLike) -> tuple[ModelParams, TrainParams]:
    """Reads the `model` and `train` sections and resolves them against the preset."""
    data = read_params_file(path)
    for section in ("model", "train"):
        if section not in data:
            raise ParamsError(f"{section}: missing section in {path}")
    return resolve_preset(parse_section("model", data["model"]),
                          parse_section("train", data["train"]))
