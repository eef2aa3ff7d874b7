"""The tf.data input pipeline: one batch per step, with every random number that step draws."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import tensorflow as tf

from dcgan import pixels
from dcgan.augment import GATES, NOISE_DIM
from dcgan.params import TrainParams

# Streams of the stateless random numbers drawn for every step.
STREAMS = ("z_d", "z_g", "aug_real", "aug_fake_d", "aug_fake_g", "noise_real", "noise_fake")


def make_dataset(images: np.ndarray, train_params: TrainParams, input_size: int,
                 start_step: int, replicas: int = 1) -> tf.data.Dataset:
    """Yields one batch per step from `start_step` on, with every random number it needs.

    Each element is a dict: `real` (the step's real images as floats), the generator's input
    vectors `z_d` and `z_g` (of models.generator_input_size), augmentation noise `aug_*` and
    label noise `noise_*`; where train.gated_augment, each `aug_*` ends in augment.GATES more
    columns. Everything is a pure function of (seed, step), so a resumed run sees exactly the
    batches an uninterrupted one would. The book's order (`shuffle` false) walks the images in
    order, epoch after epoch. With `mirror`, each real image is flipped left to right with
    probability one half. Over the run's last train.late_share the batches hold
    train.late_batch_size images, each step's as a run of that batch size draws it; the
    stream's batch size is then unknown, so training iterates make_datasets' parts instead.
    """
    parts = [dataset for _, dataset in make_datasets(images, train_params, input_size,
                                                     start_step, replicas)]
    if not parts:
        return _steps(tf.constant(images), train_params, input_size, train_params.batch_size,
                      start_step, start_step, replicas)
    dataset = parts[0]
    for part in parts[1:]:
        dataset = dataset.concatenate(part)
    return dataset


def make_datasets(images: np.ndarray, train_params: TrainParams, input_size: int,
                  start_step: int, replicas: int = 1) -> list[tuple[int, tf.data.Dataset]]:
    """make_dataset's batches as parts of one batch size each: (the part's last step, its
    batches), in step order, only parts with steps left.

    Each part's batch size is known to the traced training step, so a run with a late batch
    size compiles one step for each, as runs of those batch sizes would, and a run resumed
    in either part traces the same step as the whole run.
    """
    images_tensor = tf.constant(images)
    iterations = train_params.iterations
    late = train_params.late_start if train_params.late_share > 0 else iterations
    parts = [(train_params.batch_size, start_step, max(start_step, late)),
             (train_params.late_batch_size, max(start_step, late), iterations)]
    options = tf.data.Options()
    options.deterministic = True
    return [(last, _steps(images_tensor, train_params, input_size, batch, first, last, replicas)
             .prefetch(tf.data.AUTOTUNE).with_options(options))
            for batch, first, last in parts if first < last]


class StepIterators:
    """Iterators over make_datasets' parts, each made by `wrap` (a distributing strategy's, for
    one): `for_step(step)` is the iterator whose next batch is training step `step`'s (steps
    count from 1 and come in order)."""

    def __init__(self, parts: list[tuple[int, tf.data.Dataset]],
                 wrap: Callable[[tf.data.Dataset], Iterable] = lambda dataset: dataset):
        self._parts = [(last, iter(wrap(dataset))) for last, dataset in parts]

    def for_step(self, step: int) -> Iterator:
        while self._parts[0][0] < step:
            self._parts.pop(0)
        return self._parts[0][1]


def _steps(images_tensor: tf.Tensor, train_params: TrainParams, input_size: int, batch: int,
           first: int, last: int, replicas: int) -> tf.data.Dataset:
    # The batches of steps first to last - 1, each of `batch` images.
    num_images = int(images_tensor.shape[0])
    steps_per_epoch = num_images // batch
    seed = tf.constant([train_params.seed, 0], tf.int64)

    def batch_for_step(step):
        epoch, position = step // steps_per_epoch, step % steps_per_epoch
        order = tf.range(num_images, dtype=tf.int64)
        if train_params.shuffle:
            key = tf.random.experimental.stateless_fold_in(seed, epoch)
            order = tf.random.experimental.stateless_shuffle(order, seed=key)
        indices = order[position * batch:(position + 1) * batch]
        real = pixels.to_float(tf.gather(images_tensor, indices), train_params.pixel_range)
        key = tf.random.experimental.stateless_fold_in(seed, step + 1)
        keys = tf.random.experimental.stateless_split(key, len(STREAMS))
        draws = {"real": real}
        for i, name in enumerate(STREAMS):
            if name.startswith("z_"):
                draws[name] = tf.random.stateless_normal((batch, input_size), seed=keys[i])
            elif name.startswith("aug_"):
                draws[name] = tf.random.stateless_uniform((batch, NOISE_DIM), seed=keys[i])
            else:
                draws[name] = tf.random.stateless_uniform((batch, 1), seed=keys[i])
        if train_params.mirror:
            # A key of its own, like the consistency draws below, so that switching the flips
            # on leaves every other stream as it was.
            flip_key = tf.random.experimental.stateless_fold_in(key, len(STREAMS) + 1)
            flip = tf.random.stateless_uniform((batch, 1, 1, 1), seed=flip_key) < 0.5
            draws["real"] = tf.where(flip, tf.reverse(real, axis=[2]), real)
        if train_params.consistency_weight > 0:
            # Drawn from a key of their own, so that the streams above stay what they were.
            extra = tf.random.experimental.stateless_split(
                tf.random.experimental.stateless_fold_in(key, len(STREAMS)), 2)
            for i, name in enumerate(("aug_real_2", "aug_fake_2")):
                draws[name] = tf.random.stateless_uniform((batch, NOISE_DIM), seed=extra[i])
        if train_params.gated_augment:
            # Each augmentation noise gains GATES columns that decide which policies apply to
            # which images, from a key of their own, so its first NOISE_DIM stay as they were.
            names = sorted(name for name in draws if name.startswith("aug_"))
            gate_keys = tf.random.experimental.stateless_split(
                tf.random.experimental.stateless_fold_in(key, len(STREAMS) + 2), len(names))
            for i, name in enumerate(names):
                gates = tf.random.stateless_uniform((batch, GATES), seed=gate_keys[i])
                draws[name] = tf.concat([draws[name], gates], axis=1)
        return draws

    dataset = tf.data.Dataset.range(first, last).map(
        batch_for_step, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if replicas > 1:
        # Rebatching gives the batch a static size, which tf.distribute needs to split it
        # into one consecutive slice per replica.
        dataset = dataset.unbatch().batch(batch, drop_remainder=True)
    return dataset
