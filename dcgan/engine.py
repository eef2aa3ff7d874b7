"""How the training step runs on this machine: devices, XLA and precision, from `auto` switches."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import tensorflow as tf

from dcgan.cpu import read_cpuinfo
from dcgan.errors import ParamsError
from dcgan.params import TrainParams

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Engine:
    """How the step runs on this machine, resolved from the `auto` switches."""

    strategy: tf.distribute.Strategy
    jit_compile: bool
    precision: str  # the Keras dtype policy the networks are built under: float32, mixed_*16

    @property
    def loss_scaling(self) -> bool:
        """Whether the optimizers scale the loss, as float16's narrow range needs."""
        return self.precision == "mixed_float16"

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    def describe(self) -> dict:
        """What changes the variables a run keeps or the arithmetic it does: the engine entry
        of the train stage's recipe.json."""
        return {"devices": self.replicas, "jit_compile": self.jit_compile,
                "precision": self.precision}


@dataclass(frozen=True)
class OneDNN:
    """What TensorFlow's oneDNN kernels can use on this CPU, as far as the step's speed goes.

    avx512: AVX-512. There TensorFlow's step without XLA, whose kernels are oneDNN's, is faster
    than XLA's: 22 to 35 % shorter on the two AVX-512 CPUs timed, where on the two AVX2-only
    ones it is 22 to 35 % longer (docs/recipe-search.md, round 28).

    bfloat16: instructions that compute bfloat16 (AVX512_BF16, or AMX's). With them oneDNN's
    step under Keras's mixed_bfloat16 policy is shorter than in float32: by 28 to 29 % for the
    default recipe and 44 to 45 % for the book's on a Zen 4 and a Zen 5 EPYC (AVX512_BF16;
    docs/recipe-search.md, rounds 46 and 47), and by 41 % and 76 % on a Xeon whose oneDNN
    convolutions run on AMX (round 55; an earlier Xeon with AMX in its flags saved 2 %, round
    33). Without them bfloat16 is emulated: with oneDNN held to AVX-512 without them
    (ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI) the default's step on the Zen 4 took 2.2 times as
    long as in float32 (round 47).
    """

    avx512: bool = False
    bfloat16: bool = False


def onednn_cpu(cpuinfo: str | os.PathLike = "/proc/cpuinfo",
               environ: dict | None = None) -> OneDNN:
    """What oneDNN can use on this CPU, from its flags; nothing where the flags cannot be read
    (no /proc/cpuinfo) or oneDNN is turned off (TF_ENABLE_ONEDNN_OPTS=0), which makes its
    kernels' steps the slower ones."""
    environ = os.environ if environ is None else environ
    if environ.get("TF_ENABLE_ONEDNN_OPTS", "").strip().lower() in ("0", "false", "off"):
        return OneDNN()
    flags = read_cpuinfo(cpuinfo).flags
    return OneDNN(avx512="avx512f" in flags,
                  bfloat16=bool(flags & {"avx512_bf16", "amx_bf16"}))


def _cpu_bfloat16_timed(devices: str, jit: bool) -> bool:
    """Whether bfloat16 was timed against float32 for a CPU's step run this way: on one device
    with XLA off (docs/recipe-search.md, rounds 33, 46, 47 and 55). `auto` weighs it only
    there."""
    return devices == "one" and not jit


def choose(train_params: TrainParams, gpus: int, cpus: int,
           *, cpu: OneDNN = OneDNN()) -> tuple[bool, str, str]:
    """Resolves the switches for a machine with `gpus` GPUs and `cpus` logical CPUs.

    Returns (jit_compile, precision, devices) with precision a Keras dtype policy's name and
    devices one of "one", "gpus", "cpus".

    auto means: XLA on one device, unless that device is a CPU where oneDNN has AVX-512 (`cpu`,
    see OneDNN) and the run is not train.deterministic; float16 on GPUs, bfloat16 on one CPU
    that computes it (AVX512_BF16 or AMX) where XLA is off, float32 on other CPUs; every GPU
    (or, when a caller split the host on purpose, every logical CPU) under MirroredStrategy.
    Mixed precision on means float16 on GPUs and bfloat16 on CPUs. A deterministic run
    compiles its step because TensorFlow's own CPU kernels, oneDNN's and Eigen's alike, gave
    batch-64 steps that did not repeat on a Zen 5 EPYC even under op determinism, where XLA's
    step repeated (docs/recipe-search.md, round 39). XLA stays off with several devices: a
    compiled step cannot reach variables that live on another device ("Trying to access
    resource ... located in device CPU:1 from device CPU:0").

    Raises:
        ParamsError: XLA asked for with several devices.
    """
    devices = "one"
    if train_params.distribute == "auto":
        if gpus > 1:
            devices = "gpus"
        elif gpus == 0 and cpus > 1:
            devices = "cpus"
    several = devices != "one"
    if train_params.jit_compile == "on" and several:
        raise ParamsError("train.jit_compile: 'on' cannot run on several devices, since XLA "
                          "cannot reach variables on another device; use 'auto' or 'off', or "
                          "set train.distribute to 'off'")
    jit = train_params.jit_compile == "on" or (
        train_params.jit_compile == "auto" and not several
        and (gpus > 0 or not cpu.avx512 or train_params.deterministic))
    precision = "float32"
    if train_params.mixed_precision == "on":
        precision = "mixed_float16" if gpus else "mixed_bfloat16"
    elif train_params.mixed_precision == "auto":
        if gpus:
            precision = "mixed_float16"
        elif _cpu_bfloat16_timed(devices, jit) and cpu.bfloat16:
            precision = "mixed_bfloat16"
    return jit, precision, devices


def resolve_engine(train_params: TrainParams) -> Engine:
    """Turns the jit_compile, mixed_precision and distribute switches into an Engine.

    Raises:
        ParamsError: see choose.
    """
    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")
    cpu = OneDNN() if gpus else onednn_cpu()
    jit, precision, devices = choose(train_params, len(gpus), len(cpus), cpu=cpu)
    if cpu.avx512 and devices == "one" and train_params.jit_compile == "auto":
        if jit:
            logger.info("train.jit_compile auto: XLA on although this CPU has AVX-512, since "
                        "train.deterministic asks for steps that repeat, which TensorFlow's "
                        "own CPU kernels do not promise; the step is slower")
        else:
            logger.info("train.jit_compile auto: XLA off, since this CPU has AVX-512, where "
                        "TensorFlow's oneDNN kernels make the step faster than XLA's")
    if train_params.mixed_precision == "auto" and precision == "mixed_bfloat16":
        logger.info("train.mixed_precision auto: bfloat16, since this CPU computes it "
                    "(AVX512_BF16 or AMX), which made the default's step 2 to 41 % shorter "
                    "than float32's on the four CPUs timed; 'off' trains in float32")
    if train_params.mixed_precision == "on" and not gpus and not cpu.bfloat16:
        logger.warning("train.mixed_precision on: this CPU does not compute bfloat16 in "
                       "oneDNN (no AVX512_BF16 or AMX in its flags, or oneDNN off) but "
                       "emulates it, and the step can take twice as long as in float32; "
                       "'off' trains in float32")
    if devices == "gpus":
        strategy = tf.distribute.MirroredStrategy([d.name for d in gpus])
    elif devices == "cpus":
        strategy = tf.distribute.MirroredStrategy([d.name for d in cpus])
    else:
        strategy = tf.distribute.get_strategy()
    return Engine(strategy=strategy, jit_compile=jit, precision=precision)
