"""How the training step runs on this machine: devices, XLA and precision, from `auto` switches."""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from dcgan.errors import ParamsError
from dcgan.params import TrainParams


@dataclass(frozen=True)
class Engine:
    """How the step runs on this machine, resolved from the `auto` switches."""

    strategy: tf.distribute.Strategy
    jit_compile: bool
    mixed_precision: bool

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync


def resolve_engine(train_params: TrainParams) -> Engine:
    """Turns the jit_compile, mixed_precision and distribute switches into an Engine.

    Raises:
        ParamsError: mixed precision asked for on a machine without a GPU.
    """
    gpus = tf.config.list_logical_devices("GPU")
    if train_params.mixed_precision == "on" and not gpus:
        raise ParamsError("train.mixed_precision: 'on' needs a GPU and none is visible; "
                          "use 'auto' or 'off' on a CPU")
    mixed = train_params.mixed_precision == "on" or (
        train_params.mixed_precision == "auto" and bool(gpus))
    jit = train_params.jit_compile == "on" or (train_params.jit_compile == "auto" and bool(gpus))
    cpus = tf.config.list_logical_devices("CPU")
    if train_params.distribute == "auto" and len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy([d.name for d in gpus])
    elif train_params.distribute == "auto" and not gpus and len(cpus) > 1:
        # Several logical CPUs exist only when a caller split the host on purpose.
        strategy = tf.distribute.MirroredStrategy([d.name for d in cpus])
    else:
        strategy = tf.distribute.get_strategy()
    return Engine(strategy=strategy, jit_compile=jit, mixed_precision=mixed)
