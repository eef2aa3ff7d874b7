"""The training loop: steps, logging, snapshots and checkpoints that resume exactly."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from dcgan import train_log
from dcgan.checkpoints import CheckpointStore
from dcgan.dataset import StepIterators, make_datasets
from dcgan.engine import Engine, resolve_engine
from dcgan.errors import ParamsError
from dcgan.gan import GAN
from dcgan.models import generator_input_size
from dcgan.params import ModelParams, TrainParams
from dcgan.progress import LogLines, progress_bar
from dcgan.snapshots import snapshot_latents

logger = logging.getLogger(__name__)

# Seconds between progress lines in the log when no progress bar shows.
LOG_INTERVAL = 15
# Params that say how often to write things down, not what to compute.
CADENCE_KEYS = ("log_every", "snapshot_every", "checkpoint_every")
# Snapshots are progress pictures taken every snapshot_every steps, so they refresh the
# average's batch-norm statistics from at most this many of train.ema_bn_batches (1.8 s on a
# 2-core CPU for the default); the saved generator uses them all.
SNAPSHOT_BN_BATCHES = 16


def check_batch_size(train_params: TrainParams, model_params: ModelParams, num_images: int,
                     engine: Engine) -> None:
    """Rejects a batch size that only turns out wrong once the data and devices are known."""
    for key, batch_size in train_params.batch_sizes.items():
        if batch_size > num_images:
            raise ParamsError(f"train.{key}: {batch_size} is larger than the {num_images} "
                              "training images")
        if batch_size % engine.replicas:
            raise ParamsError(f"train.{key}: {batch_size} does not split evenly over "
                              f"{engine.replicas} devices")
        group, share = model_params.minibatch_std_group, batch_size // engine.replicas
        if group and share % group:
            raise ParamsError(f"model.minibatch_std_group: {group} does not divide the "
                              f"{share} images each device's discriminator sees per step "
                              f"(train.{key} over the devices)")


@dataclass
class TrainResult:
    gan: GAN
    log_rows: list[dict]
    snapshots: dict[int, np.ndarray]
    seconds: float
    resumed_from: int
    last_step: int


def fit(images: np.ndarray, model_params: ModelParams, train_params: TrainParams,
        checkpoint_dir: str | Path, data_digest: str, engine: Engine | None = None,
        stop_after: int | None = None, max_seconds: float | None = None,
        gan_hook: Callable[[GAN], None] | None = None) -> TrainResult:
    """Trains the GAN on uint8 `images`, resuming from `checkpoint_dir` when it matches.

    Args:
        data_digest: identifies the training data; with the params and the engine's
            precision it makes the fingerprint a checkpoint must match to be resumed.
        stop_after: stop after this step as if interrupted (for tests and benchmarks); 0 stops
            before the first step.
        max_seconds: stop after the step that uses up this wall-clock budget (benchmarks).
        gan_hook: called with the new GAN before anything is restored or traced, to swap a
            piece the params cannot name (benchmarks that train a variant, e.g. another
            loss). The fingerprint does not see the change: give such a run a fresh
            `checkpoint_dir`.

    Raises:
        TrainingError: a loss or a weight became NaN or infinite; the last good checkpoint
            stays, and the message names its step.
    """
    engine = engine or resolve_engine(train_params)
    check_batch_size(train_params, model_params, len(images), engine)
    if train_params.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    fingerprint = fingerprint_of(model_params, train_params, data_digest, engine)
    store = CheckpointStore(checkpoint_dir)
    gan = GAN(model_params, train_params, engine)
    if gan_hook is not None:
        gan_hook(gan)
    gan.step_counter.assign(0)
    restored = store.restore(gan.state(), fingerprint)
    start, log_rows, seconds_before = 0, [], 0.0
    if restored is not None:
        start, log_rows, seconds_before = restored.step, restored.log_rows, restored.seconds
        gan.step_counter.assign(start)
        logger.info("resuming from the checkpoint at step %d", start)
    snapshots = store.snapshots(up_to=start)
    input_size = generator_input_size(model_params)
    latents = snapshot_latents(train_params.seed, input_size)

    parts = make_datasets(images, train_params, input_size, start, engine.replicas)
    iterators = (StepIterators(parts, engine.strategy.experimental_distribute_dataset)
                 if engine.replicas > 1 else StepIterators(parts))
    iterations = train_params.iterations
    last = iterations if stop_after is None else min(iterations, stop_after)
    started = time.perf_counter()
    lines = LogLines(LOG_INTERVAL)
    progress = progress_bar(total=iterations, initial=start, unit="step", desc="train")
    step = start

    def check():
        gan.raise_if_diverged(store.latest_step())

    try:
        for step in range(start + 1, last + 1):
            metrics = gan.step_fn(iterators.for_step(step))
            progress.update(1)
            out_of_time = max_seconds is not None and time.perf_counter() - started >= max_seconds
            stopping = step == last or out_of_time
            # Only the steps an uninterrupted run logs, so a resumed log equals its log.
            if step % train_params.log_every == 0 or step == iterations:
                values = {"step": step, **{k: float(v) for k, v in metrics.items()},
                          "seconds": round(seconds_before + time.perf_counter() - started, 3)}
                row = {column: values[column]
                       for column in (*train_log.COLUMNS, *train_log.OPTIONAL_COLUMNS)}
                check()
                log_rows.append(row)
                progress.set_postfix(d=f"{row['d_loss']:.3f}", g=f"{row['g_loss']:.3f}")
                now = time.perf_counter()
                if lines.due(now, force=stopping):
                    logger.info("step %d/%d d_loss %.4f g_loss %.4f (%.2f steps/s)", step,
                                iterations, row["d_loss"], row["g_loss"],
                                (step - start) / (now - started))
            if step % train_params.snapshot_every == 0 or step == iterations or out_of_time:
                check()
                snapshots[step] = gan.generate(latents, refresh_most=SNAPSHOT_BN_BATCHES)
                store.write_snapshot(step, snapshots[step])
            if step % train_params.checkpoint_every == 0 or stopping:
                check()
                store.save(gan.state(), fingerprint, step, log_rows,
                           seconds_before + time.perf_counter() - started)
            if out_of_time:
                break
    finally:
        progress.close()
    return TrainResult(gan=gan, log_rows=log_rows, snapshots=snapshots,
                       seconds=seconds_before + time.perf_counter() - started,
                       resumed_from=start, last_step=step)


def fingerprint_of(model_params: ModelParams, train_params: TrainParams,
                   data_digest: str, engine: Engine) -> dict:
    """What a checkpoint must match to be resumed: everything that changes the computation.

    How often a run logs, snapshots and checkpoints changes nothing it computes, so a run
    resumes across changes of those. The resolved precision counts, since float16 and
    bfloat16 change the arithmetic and float16 adds variables; the number of devices and XLA
    do not.
    """
    train_values = dataclasses.asdict(train_params)
    for key in CADENCE_KEYS:
        train_values.pop(key)
    fingerprint = {"model": dataclasses.asdict(model_params), "train": train_values,
                   "precision": engine.precision,
                   "data": data_digest}
    # As JSON stores it (tuples become lists), so that a saved one compares equal.
    return json.loads(json.dumps(fingerprint))
