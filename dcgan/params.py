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
         pattern=None, recipe=False, doc=""):
    """Declares a params key: its allowed values, and whether it belongs to a recipe.

    Recipe keys are those a file under recipes/ sets (see dcgan.recipes); the others say how
    a run is carried out (seeds, logging, devices, XLA) and stay as params.yaml has them.
    Precision is a recipe key: bfloat16 or float16 arithmetic changes what a recipe trains,
    where XLA only orders the same float32 arithmetic differently.
    """
    return field(metadata=dict(choices=choices, low=low, high=high, low_open=low_open,
                               high_open=high_open, pattern=pattern, recipe=recipe, doc=doc))


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
    architecture: str = spec(choices=("compact", "resnet", "chollet"), recipe=True)
    latent_dim: int = spec(low=1, recipe=True)
    width: int = spec(low=1, recipe=True)
    dropout: float = spec(low=0.0, high=1.0, high_open=True, recipe=True)
    spectral_norm: bool = spec(recipe=True)
    g_top_multiplier: int = spec(low=1, recipe=True,
                                 doc="the generator's 32x32 stage has this many times width "
                                     "channels")
    g_top_convs: int = spec(low=0, recipe=True,
                            doc="3x3 convolutions added to the generator's 32x32 stage")
    d_top_convs: int = spec(low=0, recipe=True,
                            doc="3x3 convolutions added to the discriminator's 32x32 stage")
    minibatch_std_group: int = spec(low=0, recipe=True,
                                    doc="0 turns the discriminator's minibatch spread off")
    upsample: str = spec(choices=("nearest", "bilinear", "bilinear_top", "subpixel",
                                  "subpixel_top"), recipe=True,
                         doc="bilinear_top: bilinear to 32x32 alone, nearest before; "
                             "subpixel: sub-pixel convolutions, compact only; subpixel_top: "
                             "one to 32x32 alone")
    g_output: str = spec(choices=("tanh", "hard_tanh", "linear"), recipe=True,
                         doc="the generator's last activation; hard_tanh: clipped to the "
                             "range; linear: none, clipped only when images are saved")
    noise_inputs: bool = spec(recipe=True)
    g_skip: bool = spec(recipe=True, doc="StyleGAN2's skip generator: each stage paints RGB")
    g_self_modulation: int = spec(choices=(0, 32, 16, 8, 4), recipe=True,
                                  doc="the coarsest side whose generator batch normalisations "
                                      "take their scale and shift from the latent, as every "
                                      "finer side's do; 4: all; 0: none")
    d_blur: bool = spec(recipe=True, doc="the discriminator blurs before each stride")
    d_local_head: bool = spec(recipe=True, doc="the discriminator also scores every location "
                                               "of its 16x16 features")
    d_local_loss: str = spec(choices=("mean", "patches"), recipe=True,
                             doc="mean: the local scores' mean joins the logit; patches: each "
                                 "score is judged by the loss on its own")

    def validate(self) -> None:
        self._only_on(("compact", "resnet"), "spectral_norm", False, "discriminator",
                      "no spectral normalisation")
        self._compact_only("g_top_multiplier", 1, "generator", "no stage of its own at 32x32")
        self._compact_only("g_top_convs", 0, "generator", "no convolutions to add at 32x32")
        self._compact_only("d_top_convs", 0, "discriminator", "no convolutions to add at 32x32")
        self._only_on(("compact", "resnet"), "upsample", "nearest", "generator",
                      "transposed convolutions, not upsampling")
        if self.architecture == "resnet" and self.upsample.startswith("subpixel"):
            raise ParamsError(f"model.upsample: the resnet generator's blocks interpolate, "
                              f"and {self.upsample} is the compact generator's; set it to "
                              "nearest, bilinear or bilinear_top or use model.architecture "
                              "compact")
        self._compact_only("g_output", "tanh", "generator", "a tanh output only")
        self._compact_only("noise_inputs", False, "generator", "no noise inputs")
        self._compact_only("g_skip", False, "generator", "no skip connections to RGB")
        self._only_on(("compact", "resnet"), "g_self_modulation", 0, "generator",
                      "no self-modulation")
        self._compact_only("d_blur", False, "discriminator", "no blur before its strides")
        self._compact_only("d_local_head", False, "discriminator", "no local head")
        if self.d_local_loss != "mean" and not self.d_local_head:
            raise ParamsError(f"model.d_local_loss: {self.d_local_loss} judges the local "
                              "head's scores, and model.d_local_head is false; set it to "
                              "true or model.d_local_loss to mean")
        self._only_on(("compact", "resnet"), "minibatch_std_group", 0, "discriminator",
                      "no minibatch spread")

    def _compact_only(self, key: str, off, network: str, lacks: str) -> None:
        """Rejects `key` set to other than `off` on a network other than compact's."""
        self._only_on(("compact",), key, off, network, lacks)

    def _only_on(self, architectures: tuple[str, ...], key: str, off, network: str,
                 lacks: str) -> None:
        """Rejects `key` set to other than `off` on a network not in `architectures`."""
        if self.architecture not in architectures and getattr(self, key) != off:
            setting = str(off).lower()
            raise ParamsError(f"model.{key}: the {self.architecture} {network} has {lacks}; "
                              f"set it to {setting} or use model.architecture "
                              + " or ".join(architectures))


@dataclass(frozen=True)
class TrainParams:
    iterations: int = spec(low=1, recipe=True)
    batch_size: int = spec(low=1, recipe=True)
    optimizer: str = spec(choices=("adam", "rmsprop", "keras2_rmsprop"), recipe=True)
    d_learning_rate: float = spec(low=0.0, low_open=True, recipe=True)
    g_learning_rate: float = spec(low=0.0, low_open=True, recipe=True)
    beta_1: float = spec(low=0.0, high=1.0, high_open=True, recipe=True, doc="adam only")
    beta_2: float = spec(low=0.0, high=1.0, high_open=True, recipe=True, doc="adam only")
    learning_rate_decay: float = spec(low=0.0, recipe=True,
                                      doc="Keras 2's decay: the rate at step t is "
                                          "rate / (1 + decay * t)")
    learning_rate_ramp_down: float = spec(low=0.0, high=1.0, recipe=True,
                                          doc="0 turns the ramp-down off")
    clipvalue: float = spec(low=0.0, recipe=True, doc="0 turns clipping off")
    loss: str = spec(choices=("book", "nonsaturating", "hinge", "relativistic"),
                     recipe=True)
    label_noise: float = spec(low=0.0, high=1.0, recipe=True)
    pixel_range: str = spec(choices=("symmetric", "unit"), recipe=True)
    shuffle: bool = spec(recipe=True)
    mirror: bool = spec(recipe=True)
    ema: float = spec(low=0.0, high=1.0, high_open=True, recipe=True,
                      doc="0 turns the moving average off")
    ema_bn_batches: int = spec(low=0, recipe=True,
                               doc="0 keeps the generator's batch-norm statistics")
    augment: tuple[str, ...] = spec(choices=AUGMENT_POLICIES, recipe=True)
    augment_color: float = spec(low=0.0, high=2.0, recipe=True,
                                doc="the share of DiffAugment's colour changes")
    augment_saturation: float = spec(low=0.0, high=1.0, recipe=True,
                                     doc="color's saturation change, as a share of "
                                         "augment_color's")
    augment_translation: float = spec(low=0.0, high=1.0, recipe=True,
                                      doc="the largest shift, as a share of the image side")
    augment_cutout: float = spec(low=0.0, high=1.0, recipe=True,
                                 doc="the square's side, as a share of the image side")
    augment_probability: float = spec(low=0.0, high=1.0, recipe=True,
                                      doc="the chance each policy applies to each image; with "
                                          "augment_target, the chance at the first step")
    augment_target: float = spec(low=0.0, high=1.0, recipe=True,
                                 doc="ADA's target for the mean sign of the discriminator's "
                                     "outputs on reals; 0 keeps the chance fixed")
    augment_ramp: int = spec(low=1, recipe=True,
                             doc="ADA: the real images over which the chance can move by 1")
    augment_fade: float = spec(low=0.0, high=1.0, recipe=True,
                               doc="the share of the run, at its end, over which the chance "
                                   "falls linearly toward 0; 0 turns the fade off")
    late_share: float = spec(low=0.0, high=1.0, recipe=True,
                             doc="the share of the run, at its end, that trains at "
                                 "late_batch_size; 0: none")
    late_batch_size: int = spec(low=0, recipe=True,
                                doc="the batch size of the run's last late_share; 0: none")
    r1_gamma: float = spec(low=0.0, recipe=True, doc="0 turns the R1 penalty off")
    r1_every: int = spec(low=1, recipe=True,
                         doc="the R1 penalty on every this many steps, times this many")
    r1_gamma_growth: float = spec(low=0.0, recipe=True,
                                  doc="R1's weight at the run's last step, in r1_gammas; 1: "
                                      "constant")
    r2_gamma: float = spec(low=0.0, recipe=True,
                           doc="the R1 penalty on fakes, on R1's steps; 0 turns it off")
    r1_coarse_weight: float = spec(low=0.0, recipe=True,
                                   doc="R1's and R2's weight on the gradient's means over "
                                       "2x2 blocks, in their gammas")
    r1_fine_weight: float = spec(low=0.0, recipe=True,
                                 doc="R1's and R2's weight on the gradient's detail finer than "
                                     "a 2x2 block, in their gammas")
    lecam_weight: float = spec(low=0.0, recipe=True, doc="0 turns LeCam regularisation off")
    consistency_weight: float = spec(low=0.0, recipe=True,
                                     doc="0 turns consistency regularisation (bCR) off")
    g_top_k: float = spec(low=0.0, high=1.0, low_open=True, recipe=True,
                          doc="the share of each batch's fakes, those the discriminator finds "
                              "most real, that the generator learns from on the run's last "
                              "step; 1: all")
    seed: int = spec(low=0)
    log_every: int = spec(low=1)
    snapshot_every: int = spec(low=1)
    checkpoint_every: int = spec(low=1)
    deterministic: bool = spec()
    jit_compile: str = spec(choices=SWITCH)
    mixed_precision: str = spec(choices=SWITCH, recipe=True)
    distribute: str = spec(choices=("auto", "off"))

    @property
    def late_start(self) -> int:
        """The first step, counting from 0, at train.late_batch_size; iterations where none."""
        return self.iterations - self.last_steps(self.late_share)

    def last_steps(self, share: float) -> int:
        """How many of the run's last steps a share of it spans (train.late_share,
        learning_rate_ramp_down, augment_fade): at least 1 where the share is on; 0: none."""
        return 0 if share == 0 else max(1, round(share * self.iterations))

    def batch_size_at(self, step: int) -> int:
        """The batch size of step `step`, counting from 0."""
        return self.batch_size if step < self.late_start else self.late_batch_size

    @property
    def batch_sizes(self) -> dict[str, int]:
        """Every batch size the run trains at, by the key that sets it."""
        late = {"late_batch_size": self.late_batch_size} if self.late_share > 0 else {}
        return {"batch_size": self.batch_size, **late}

    @property
    def last_batch_size(self) -> int:
        """The batch size the run ends at, which the average's batch-norm refresh uses."""
        return self.batch_size_at(self.iterations - 1)

    def images_seen(self, steps: int) -> int:
        """The real images the run's first `steps` steps train on."""
        early = min(steps, self.late_start)
        return early * self.batch_size + (steps - early) * self.batch_size_at(steps - 1)

    @property
    def gated_augment(self) -> bool:
        """Whether each policy applies to each image by chance rather than always."""
        return self.augment_probability < 1 or self.augment_target > 0 or self.augment_fade > 0

    def validate(self) -> None:
        if self.loss in ("hinge", "relativistic") and self.label_noise > 0:
            raise ParamsError(f"train.label_noise: must be 0 with train.loss '{self.loss}', "
                              "which has no labels to add noise to")
        if self.consistency_weight > 0 and not self.augment:
            raise ParamsError("train.consistency_weight: compares two augmentations of each "
                              "image, so it needs train.augment; set one or set it to 0")
        if (self.late_share > 0) != (self.late_batch_size > 0):
            raise ParamsError("train.late_share, train.late_batch_size: the run's last share "
                              "trains at the late batch size, so set both or neither to 0")
        if (self.r1_coarse_weight != 1 or self.r1_fine_weight != 1) and (
                self.r1_gamma == 0 and self.r2_gamma == 0):
            raise ParamsError("train.r1_coarse_weight, train.r1_fine_weight: weigh the R1 and "
                              "R2 penalties, and both are off; set train.r1_gamma or "
                              "train.r2_gamma, or set both to 1")
        if self.r1_coarse_weight == self.r1_fine_weight == 0:
            raise ParamsError("train.r1_coarse_weight, train.r1_fine_weight: both 0 leave R1 "
                              "and R2 nothing to penalise; set train.r1_gamma and "
                              "train.r2_gamma to 0 instead")
        if self.ema_bn_batches > 0 and self.ema == 0:
            raise ParamsError("train.ema_bn_batches: refreshes the moving average's statistics, "
                              "so it needs train.ema > 0; set it to 0")
        if self.gated_augment and not self.augment:
            raise ParamsError("train.augment_probability, train.augment_target, "
                              "train.augment_fade: set how often train.augment's policies "
                              "apply, so they need one; set train.augment or set them to 1, 0 "
                              "and 0")
        if (self.augment_color != 1 or self.augment_saturation != 1) and (
                "color" not in self.augment):
            raise ParamsError("train.augment_color, train.augment_saturation: scale the color "
                              "policy's changes, and train.augment has no 'color'; add it or "
                              "set both to 1")
        if self.augment_fade > 0 and self.augment_target > 0:
            raise ParamsError("train.augment_fade: sets the chance by the step, where ADA "
                              "(train.augment_target) steers it; set one of them to 0")
        if self.augment_target > 0 and self.loss == "relativistic":
            raise ParamsError("train.augment_target: reads the sign of the discriminator's "
                              "outputs on reals, which the relativistic loss leaves free; "
                              "set it to 0 or pick another train.loss")
        if self.g_top_k < 1 and self.loss == "relativistic":
            raise ParamsError("train.g_top_k: ranks each fake by its own score, where the "
                              "relativistic loss judges it against a real image; set it to 1 "
                              "or pick another train.loss")
        if self.augment and self.pixel_range != "symmetric":
            raise ParamsError("train.augment: DiffAugment works on [-1, 1] images; set "
                              "train.pixel_range to 'symmetric' or train.augment to []")


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
    swd_draw_size: int = spec(low=2, doc="SWD is the mean over draws of this many samples")
    inception_batch_size: int = spec(low=1)
    grid_size: int = spec(low=1, high=32)


SECTIONS = {
    "prepare": PrepareParams,
    "model": ModelParams,
    "train": TrainParams,
    "sample": SampleParams,
    "evaluate": EvaluateParams,
}


def recipe_keys(section: str) -> tuple[str, ...]:
    """The keys of `section` that a recipe file sets."""
    return tuple(f.name for f in dataclasses.fields(SECTIONS[section]) if f.metadata["recipe"])


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _describe(meta: dict, type_name: str) -> str:
    if meta["choices"]:
        return "one of " + ", ".join(repr(c) for c in meta["choices"])
    bounds = []
    if meta["low"] is not None:
        bounds.append(f"{'>' if meta['low_open'] else '>='} {meta['low']}")
    if meta["high"] is not None:
        bounds.append(f"{'<' if meta['high_open'] else '<='} {meta['high']}")
    parts = [type_name, " and ".join(bounds)] if bounds else [type_name]
    if meta["doc"]:
        parts.append(f"({meta['doc']})")
    return " ".join(parts)


def _check_list(key: str, value: Any, meta: dict) -> tuple:
    expected = "a list of " + ", ".join(repr(c) for c in meta["choices"]) + " (or [])"
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ParamsError(f"{key}: expected {expected}, found {value!r}")
    unknown = [item for item in value if item not in meta["choices"]]
    if unknown or len(set(value)) != len(value):
        raise ParamsError(f"{key}: expected {expected}, each at most once, found {value!r}")
    return tuple(value)


def _check_value(key: str, value: Any, annotation: Any, meta: dict) -> Any:
    if typing.get_origin(annotation) is tuple:
        return _check_list(key, value, meta)
    base = annotation
    optional = typing.get_origin(annotation) is typing.Union
    if optional:
        base = next(a for a in typing.get_args(annotation) if a is not type(None))
    expected = _describe(meta, _TYPE_NAMES[base])
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


def parse_section(section: str, raw: Any):
    """Turns one params.yaml section (a mapping) into its frozen dataclass.

    Raises:
        ParamsError: the section is not a mapping, or a key is unknown, missing, of the wrong
            type or out of range. The message names the key.
    """
    cls = SECTIONS[section]
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
    """Reads a params file as YAML 1.2, as DVC reads and writes params.yaml.

    Under YAML 1.2, `off` stays a string after `dvc exp run -S train.jit_compile=off`.

    Raises:
        ParamsError: the file is missing, not valid YAML or not a mapping.
    """
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


def apply_setting(params: dict, setting: str) -> None:
    """Sets one `SECTION.KEY=VALUE` in `params`, a params file's sections, as `dvc exp run -S`
    would: the value read as YAML 1.2, so that `train.jit_compile=off` stays a string.

    Raises:
        ParamsError: `setting` is not SECTION.KEY=VALUE with a key `params` has, or its value
            is not valid YAML.
    """
    from ruamel.yaml import YAML, YAMLError

    key, equals, value = setting.partition("=")
    section, _, name = key.strip().partition(".")
    if not equals or not isinstance(params.get(section), dict) or name not in params[section]:
        known = ", ".join(params) or "none"
        raise ParamsError(f"{setting!r}: expected SECTION.KEY=VALUE with a key of the params "
                          f"(sections: {known}), such as train.batch_size=64")
    try:
        params[section][name] = YAML(typ="safe", pure=True).load(value)
    except YAMLError as error:
        raise ParamsError(f"{setting!r}: not a valid YAML value ({one_line(error)})") from None


def load_sections(path: str | os.PathLike, *sections: str) -> tuple:
    """Reads the named sections of the params file at `path`, each into its dataclass.

    A stage reads exactly the sections dvc.yaml declares for it, through this function.

    Raises:
        ParamsError: the file or a section is missing, or a value is bad (see parse_section).
    """
    data = read_params_file(path)
    for section in sections:
        if section not in data:
            raise ParamsError(f"{section}: missing section in {path}")
    return tuple(parse_section(section, data[section]) for section in sections)
