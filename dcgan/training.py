"""The GAN training loop: a compiled step fed by tf.data, with checkpoints that resume exactly."""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from dcgan import checkpoints, pixels
from dcgan.artifacts import atomic_path, write_json
from dcgan.augment import NOISE_DIM, diff_augment
from dcgan.checkpoints import LOG_COLUMNS
from dcgan.errors import ParamsError, TrainingError
from dcgan.losses import make_loss
from dcgan.models import build_discriminator, build_generator
from dcgan.params import ModelParams, TrainParams
from dcgan.sampling import render

log = logging.getLogger(__name__)

SNAPSHOT_LATENTS = 8

# Streams of the stateless random numbers drawn for every step.
_STREAMS = ("z_d", "z_g", "aug_real", "aug_fake_d", "aug_fake_g", "noise_real", "noise_fake")


@dataclass(frozen=True)
class Engine:
    """How the step runs on this machine, resolved from the `auto` switches."""

    strategy: tf.distribute.Strategy
    jit_compile: bool
    mixed_precision: bool

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync


def resolve_engine(train: TrainParams) -> Engine:
    """Turns the jit_compile, mixed_precision and distribute switches into an Engine.

    Raises:
        ParamsError: mixed precision asked for on a machine without a GPU.
    """
    gpus = tf.config.list_logical_devices("GPU")
    if train.mixed_precision == "on" and not gpus:
        raise ParamsError("train.mixed_precision: 'on' needs a GPU and none is visible; "
                          "use 'auto' or 'off' on a CPU")
    mixed = train.mixed_precision == "on" or (train.mixed_precision == "auto" and bool(gpus))
    jit = train.jit_compile == "on" or (train.jit_compile == "auto" and bool(gpus))
    if train.distribute == "auto" and len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy([d.name for d in gpus])
    elif train.distribute == "auto" and not gpus and len(tf.config.list_logical_devices("CPU")) > 1:
        # Several logical CPUs exist only when a caller split the host on purpose.
        strategy = tf.distribute.MirroredStrategy(
            [d.name for d in tf.config.list_logical_devices("CPU")])
    else:
        strategy = tf.distribute.get_strategy()
    return Engine(strategy=strategy, jit_compile=jit, mixed_precision=mixed)


def check_recipe(model: ModelParams, train: TrainParams, num_images: int, engine: Engine):
    """Rejects combinations that only make sense once the data and devices are known."""
    if train.batch_size > num_images:
        raise ParamsError(f"train.batch_size: {train.batch_size} is larger than the "
                          f"{num_images} training images")
    if train.batch_size % engine.replicas:
        raise ParamsError(f"train.batch_size: {train.batch_size} does not split evenly over "
                          f"{engine.replicas} devices")
    if model.preset == "chollet" and model.spectral_norm:
        raise ParamsError("model.spectral_norm: the chollet preset has no spectral "
                          "normalisation; use model.preset compact")
    if train.loss == "hinge" and train.label_noise > 0:
        raise ParamsError("train.label_noise: must be 0 with train.loss 'hinge'")
    if train.augment_policies and train.pixel_range != "symmetric":
        raise ParamsError("train.augment: needs train.pixel_range 'symmetric'")


def make_dataset(images: np.ndarray, train: TrainParams, latent_dim: int, start_step: int,
                 replicas: int = 1) -> tf.data.Dataset:
    """Yields one batch per step from `start_step` on, with every random number it needs.

    Everything a step draws (the real batch, latent vectors, augmentation and label noise) is
    a pure function of (seed, step), so a resumed run sees exactly what an uninterrupted one
    would, and a run on several devices what a run on one would.
    """
    num_images, batch = len(images), train.batch_size
    steps_per_epoch = num_images // batch
    images_tensor = tf.constant(images)
    seed = tf.constant([train.seed, 0], tf.int64)

    def batch_for_step(step):
        epoch, position = step // steps_per_epoch, step % steps_per_epoch
        order = tf.range(num_images, dtype=tf.int64)
        if train.shuffle:
            key = tf.random.experimental.stateless_fold_in(seed, epoch)
            order = tf.random.experimental.stateless_shuffle(order, seed=key)
        indices = order[position * batch:(position + 1) * batch]
        real = pixels.to_float(tf.gather(images_tensor, indices), train.pixel_range)
        key = tf.random.experimental.stateless_fold_in(seed, step + 1)
        keys = tf.random.experimental.stateless_split(key, len(_STREAMS))
        draws = {"real": real}
        for i, name in enumerate(_STREAMS):
            if name.startswith("z_"):
                draws[name] = tf.random.stateless_normal((batch, latent_dim), seed=keys[i])
            elif name.startswith("aug_"):
                draws[name] = tf.random.stateless_uniform((batch, NOISE_DIM), seed=keys[i])
            else:
                draws[name] = tf.random.stateless_uniform((batch, 1), seed=keys[i])
        return draws

    dataset = tf.data.Dataset.range(start_step, train.iterations).map(
        batch_for_step, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if replicas > 1:
        # Rebatching gives the batch a static size, which tf.distribute needs to split it
        # into one consecutive slice per replica.
        dataset = dataset.unbatch().batch(batch, drop_remainder=True)
    options = tf.data.Options()
    options.deterministic = True
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)


def _make_optimizer(train: TrainParams, learning_rate: float, mixed: bool):
    clip = {"clipvalue": train.clipvalue} if train.clipvalue > 0 else {}
    if train.optimizer == "rmsprop":
        optimizer = keras.optimizers.RMSprop(learning_rate, **clip)
    else:
        optimizer = keras.optimizers.Adam(learning_rate, beta_1=train.beta_1, **clip)
    return keras.optimizers.LossScaleOptimizer(optimizer) if mixed else optimizer


class GAN:
    """The networks, their optimizers and the compiled training step."""

    def __init__(self, model: ModelParams, train: TrainParams, engine: Engine):
        self.model_params, self.train_params, self.engine = model, train, engine
        self.loss = make_loss(train.loss, train.label_noise)
        self.policies = train.augment_policies
        if engine.mixed_precision:
            keras.mixed_precision.set_global_policy("mixed_float16")
        keras.utils.set_random_seed(train.seed)
        with engine.strategy.scope():
            self.generator = build_generator(model)
            self.discriminator = build_discriminator(model)
            self.ema_generator = None
            if train.ema > 0:
                self.ema_generator = build_generator(model)
                self.ema_generator.set_weights(self.generator.get_weights())
            self.d_optimizer = _make_optimizer(train, train.d_learning_rate,
                                               engine.mixed_precision)
            self.g_optimizer = _make_optimizer(train, train.g_learning_rate,
                                               engine.mixed_precision)
            self.d_optimizer.build(self.discriminator.trainable_variables)
            self.g_optimizer.build(self.generator.trainable_variables)
        # The step counter and the first step with a non-finite loss live on the device, so
        # that the loop need not wait for every step's losses to check them.
        self.step_counter = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.first_bad_step = tf.Variable(-1, dtype=tf.int64, trainable=False)
        self._replica_step = tf.function(self._train_replica, jit_compile=engine.jit_compile)
        self.step_fn = tf.function(self._train_step)

    @property
    def sampler(self) -> keras.Model:
        """The generator that makes samples: the moving average where one is kept."""
        return self.ema_generator or self.generator

    def state(self) -> dict[str, list]:
        """Every variable a resumed run needs, by owner."""
        parts = {"generator": self.generator.variables,
                 "discriminator": self.discriminator.variables,
                 "d_optimizer": self.d_optimizer.variables,
                 "g_optimizer": self.g_optimizer.variables}
        if self.ema_generator is not None:
            parts["ema_generator"] = self.ema_generator.variables
        return parts

    def _augment(self, images, noise):
        return diff_augment(images, noise, self.policies) if self.policies else images

    def discriminator_step(self, batch) -> dict:
        """One update of the discriminator on fakes and reals; the generator stays fixed."""
        real = batch["real"]
        size = tf.shape(real)[0]
        fake = tf.cast(self.generator(batch["z_d"], training=True), tf.float32)
        images = tf.concat([self._augment(fake, batch["aug_fake_d"]),
                            self._augment(real, batch["aug_real"])], axis=0)
        with tf.GradientTape() as tape:
            logits = tf.cast(self.discriminator(images, training=True), tf.float32)
            fake_logits, real_logits = logits[:size], logits[size:]
            d_loss = self.loss.d_sum(real_logits, fake_logits, batch["noise_real"],
                                     batch["noise_fake"]) / self.train_params.batch_size
            scaled = self.d_optimizer.scale_loss(d_loss)
        variables = self.discriminator.trainable_variables
        self.d_optimizer.apply(tape.gradient(scaled, variables), variables)
        sign = 1.0 if self.loss.real_is_positive else -1.0
        return {"d_loss": d_loss,
                "d_real_accuracy": self._fraction(sign * real_logits > 0),
                "d_fake_accuracy": self._fraction(sign * fake_logits < 0)}

    def generator_step(self, batch) -> dict:
        """One update of the generator through the discriminator, which stays frozen."""
        with tf.GradientTape() as tape:
            fake = tf.cast(self.generator(batch["z_g"], training=True), tf.float32)
            logits = tf.cast(
                self.discriminator(self._augment(fake, batch["aug_fake_g"]), training=True),
                tf.float32)
            g_loss = self.loss.g_sum(logits) / self.train_params.batch_size
            scaled = self.g_optimizer.scale_loss(g_loss)
        variables = self.generator.trainable_variables
        self.g_optimizer.apply(tape.gradient(scaled, variables), variables)
        return {"g_loss": g_loss}

    def _fraction(self, condition):
        # A share of the global batch, so that replicas' shares add up.
        return tf.reduce_sum(tf.cast(condition, tf.float32)) / self.train_params.batch_size

    def _train_replica(self, batch):
        return {**self.discriminator_step(batch), **self.generator_step(batch)}

    def _train_step(self, iterator):
        strategy = self.engine.strategy
        per_replica = strategy.run(self._replica_step, args=(next(iterator),))
        metrics = {name: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                   for name, value in per_replica.items()}
        self.step_counter.assign_add(1)
        finite = tf.math.is_finite(metrics["d_loss"]) & tf.math.is_finite(metrics["g_loss"])
        self.first_bad_step.assign(tf.where(
            (self.first_bad_step < 0) & tf.logical_not(finite), self.step_counter,
            self.first_bad_step))
        if self.ema_generator is not None:
            # The average starts by following the generator closely and slows to the set
            # decay, so that early snapshots and short runs are not dominated by the random
            # initial weights (the warm-up of tf.train.ExponentialMovingAverage).
            steps = tf.cast(self.step_counter, tf.float32)
            decay = tf.minimum(self.train_params.ema, (1.0 + steps) / (10.0 + steps))
            for average, weight in zip(self.ema_generator.variables,
                                       self.generator.variables):
                if weight.trainable:
                    average.assign(decay * average + (1.0 - decay) * weight)
                else:
                    average.assign(weight)
        return metrics

    def raise_if_diverged(self) -> None:
        """Raises TrainingError naming the first step whose loss was NaN or infinite."""
        bad = int(self.first_bad_step.numpy())
        if bad >= 0:
            raise TrainingError(
                f"train: the loss became NaN or infinite at step {bad}; stopped, and the last "
                "good checkpoint is kept. Lower the learning rates or turn on train.clipvalue")

    def generate(self, latents: np.ndarray) -> np.ndarray:
        """Images of the sampling generator for `latents`, as uint8."""
        return render(self.sampler, latents, self.train_params.pixel_range)


def snapshot_latents(train: TrainParams, latent_dim: int) -> np.ndarray:
    """The fixed latent vectors whose images show how the generator grows over training."""
    return np.random.default_rng([train.seed, 1]).standard_normal(
        (SNAPSHOT_LATENTS, latent_dim)).astype(np.float32)


@dataclass
class TrainResult:
    gan: GAN
    log_rows: list[dict]
    snapshots: dict[int, np.ndarray]
    seconds: float
    resumed_from: int


def train(images: np.ndarray, model: ModelParams, train: TrainParams,
          checkpoint_dir: str | Path, fingerprint: dict, engine: Engine | None = None,
          stop_after: int | None = None, max_seconds: float | None = None) -> TrainResult:
    """Trains the GAN on uint8 `images`, resuming from `checkpoint_dir` when it matches.

    Args:
        fingerprint: what the run depends on (params, data digest); a checkpoint made with a
            different fingerprint is not resumed.
        stop_after: stop after this step as if interrupted (for tests and benchmarks).
        max_seconds: stop after the step that uses up this wall-clock budget (benchmarks).

    Raises:
        TrainingError: a loss became NaN or infinite; the last good checkpoint stays.
    """
    engine = engine or resolve_engine(train)
    check_recipe(model, train, len(images), engine)
    if train.deterministic:
        tf.config.experimental.enable_op_determinism()
    gan = GAN(model, train, engine)
    gan.step_counter.assign(0)
    store = checkpoints.CheckpointStore(checkpoint_dir)
    restored = store.restore(gan.state(), fingerprint)
    start, log_rows, seconds_before = 0, [], 0.0
    if restored is not None:
        start, log_rows, seconds_before = restored.step, restored.log_rows, restored.seconds
        gan.step_counter.assign(start)
        log.info("resuming from the checkpoint at step %d", start)
    snapshots = store.snapshots(up_to=start)
    latents = snapshot_latents(train, model.latent_dim)

    dataset = make_dataset(images, train, model.latent_dim, start, engine.replicas)
    if engine.replicas > 1:
        dataset = engine.strategy.experimental_distribute_dataset(dataset)
    iterator = iter(dataset)
    last = min(train.iterations, stop_after) if stop_after else train.iterations
    started = time.perf_counter()
    on_terminal = sys.stderr.isatty()
    progress = tqdm(total=train.iterations, initial=start, unit="step", disable=not on_terminal,
                    dynamic_ncols=True, desc="train")
    last_line = started
    try:
        for step in range(start + 1, last + 1):
            metrics = gan.step_fn(iterator)
            progress.update(1)
            out_of_time = max_seconds is not None and time.perf_counter() - started >= max_seconds
            boundary = step == last or out_of_time
            if step % train.log_every == 0 or boundary:
                values = {"step": step, **{k: float(v) for k, v in metrics.items()},
                          "seconds": round(seconds_before + time.perf_counter() - started, 3)}
                row = {column: values[column] for column in LOG_COLUMNS}
                gan.raise_if_diverged()
                log_rows.append(row)
                progress.set_postfix(d=f"{row['d_loss']:.3f}", g=f"{row['g_loss']:.3f}")
                now = time.perf_counter()
                if not on_terminal and (now - last_line > 15 or boundary):
                    log.info("step %d/%d d_loss %.4f g_loss %.4f (%.2f steps/s)", step,
                             train.iterations, row["d_loss"], row["g_loss"],
                             (step - start) / (now - started))
                    last_line = now
            if step % train.snapshot_every == 0 or step == train.iterations or out_of_time:
                gan.raise_if_diverged()
                snapshots[step] = gan.generate(latents)
                store.write_snapshot(step, snapshots[step])
            if step % train.checkpoint_every == 0 or boundary:
                gan.raise_if_diverged()
                store.save(gan.state(), fingerprint, step, log_rows,
                           seconds_before + time.perf_counter() - started)
            if out_of_time:
                break
    finally:
        progress.close()
    return TrainResult(gan=gan, log_rows=log_rows, snapshots=snapshots,
                       seconds=seconds_before + time.perf_counter() - started,
                       resumed_from=start)


def fingerprint_of(model: ModelParams, train: TrainParams, data_digest: str) -> dict:
    """What a checkpoint must match to be resumed: every param that changes the run."""
    train_values = dataclasses.asdict(train)
    train_values.pop("checkpoint_every")
    return {"model": dataclasses.asdict(model), "train": train_values, "data": data_digest}


def save_outputs(result: TrainResult, out_dir: str | Path) -> None:
    """Writes the trained networks, the log, the snapshots and the resolved recipe.

    The directory is written whole under a temporary name and renamed into place, so it exists
    only once training has completed.
    """
    gan = result.gan
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        gan.sampler.save(tmp / "generator.keras")
        gan.discriminator.save(tmp / "discriminator.keras")
        (tmp / "train_log.csv").write_text(checkpoints.rows_to_csv(result.log_rows))
        store = checkpoints.CheckpointStore(tmp)
        for step, images in sorted(result.snapshots.items()):
            store.write_snapshot(step, images)
        steps = gan.train_params.iterations
        write_json(tmp / "recipe.json", {
            "model": dataclasses.asdict(gan.model_params),
            "train": dataclasses.asdict(gan.train_params),
            "engine": {"devices": gan.engine.replicas, "jit_compile": gan.engine.jit_compile,
                       "mixed_precision": gan.engine.mixed_precision},
            "generator": "exponential moving average" if gan.ema_generator else "trained",
            "seconds": round(result.seconds, 1),
            "images_per_second": round(steps * gan.train_params.batch_size / result.seconds, 1),
        })
    log.info("wrote %s", out_dir)
