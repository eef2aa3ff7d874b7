"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) driven by explicit noise.

The policies follow mit-han-lab/data-efficient-gans: color (brightness, saturation,
contrast; `color` scales how far each moves from no change, 1 there, up to 2), translation
(by up to `translation` of the image side, zero padded; 1/8 there) and cutout (a square whose
side is `cutout` of the image side; 1/2 there). Every random draw comes from a `noise` tensor
of shape (batch, NOISE_DIM) with uniform values in [0, 1), made by the input pipeline, so
that an augmentation is a pure function of its inputs: identical across devices, batch splits
and resumed runs.

With a `probability` (ADA's p, Karras et al. 2020), each policy applies to each image on its
own with that probability, decided by GATES more noise columns after the first NOISE_DIM.
"""

from __future__ import annotations

import tensorflow as tf

NOISE_DIM = 7
# One gate column per policy, in this order, whatever order the policies are applied in.
GATED_POLICIES = ("color", "translation", "cutout")
GATES = len(GATED_POLICIES)


def diff_augment(images: tf.Tensor, noise: tf.Tensor, policies: tuple[str, ...],
                 translation: float, cutout: float, color: float = 1.0,
                 probability: tf.Tensor | float | None = None,
                 saturation: float = 1.0) -> tf.Tensor:
    """Applies `policies` in order to images in [-1, 1] of shape (batch, height, width, 3).

    With `probability`, `noise` has NOISE_DIM + GATES columns, and a policy changes an image
    only where its gate column is below the probability; without, every policy changes every
    image. `saturation` scales color's saturation change further, as a share of `color`'s.
    """
    for policy in policies:
        if policy == "color":
            augmented = _color(images, noise[:, 0:3], color, color * saturation)
        elif policy == "translation":
            augmented = _translation(images, noise[:, 3:5], translation)
        elif policy == "cutout":
            augmented = _cutout(images, noise[:, 5:7], cutout)
        else:
            raise ValueError(f"unknown augmentation policy {policy!r}")
        if probability is None:
            images = augmented
        else:
            gate = noise[:, NOISE_DIM + GATED_POLICIES.index(policy)]
            applies = tf.reshape(gate < tf.cast(probability, gate.dtype), (-1, 1, 1, 1))
            images = tf.where(applies, augmented, images)
    return images


def _per_image(values: tf.Tensor, dtype) -> tf.Tensor:
    return tf.cast(tf.reshape(values, (-1, 1, 1, 1)), dtype)


def _color(images, noise, strength, saturation_strength):
    # At strength s and saturation strength t: brightness + s * [-0.5, 0.5), saturation x
    # max(0, 1 + t * [-1, 1)), contrast x (1 + s * [-0.5, 0.5)). Above 1, saturation stops at
    # grey rather than turn each colour into its opposite. Written so that s = t = 1 computes
    # DiffAugment's values exactly.
    brightness = _per_image((noise[:, 0] - 0.5) * strength, images.dtype)
    images = images + brightness
    saturation = tf.maximum(
        noise[:, 1] * (2.0 * saturation_strength) + (1.0 - saturation_strength), 0.0)
    saturation = _per_image(saturation, images.dtype)
    mean = tf.reduce_mean(images, axis=3, keepdims=True)
    images = (images - mean) * saturation + mean
    contrast = _per_image(noise[:, 2] * strength + (1.0 - 0.5 * strength), images.dtype)
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return (images - mean) * contrast + mean


def _shift(noise_column: tf.Tensor, max_shift: int) -> tf.Tensor:
    # Uniform integers in [-max_shift, max_shift], as tf.random.uniform(minval, maxval) draws.
    steps = tf.cast(tf.floor(noise_column * (2 * max_shift + 1)), tf.int32)
    return tf.minimum(steps, 2 * max_shift) - max_shift


def _translation(images, noise, ratio):
    height, width = images.shape[1], images.shape[2]
    shift_y = _shift(noise[:, 0], int(height * ratio + 0.5))
    shift_x = _shift(noise[:, 1], int(width * ratio + 0.5))
    # Index into a copy padded with one zero row (column) on each side; indices that fall off
    # the image are clipped onto the padding, so uncovered pixels become zero.
    rows = tf.clip_by_value(tf.range(height)[None, :] + shift_y[:, None] + 1, 0, height + 1)
    cols = tf.clip_by_value(tf.range(width)[None, :] + shift_x[:, None] + 1, 0, width + 1)
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])
    images = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(images, cols, axis=2, batch_dims=1)


def _cutout(images, noise, ratio):
    height, width = images.shape[1], images.shape[2]
    cut_h, cut_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    centre_y = tf.cast(tf.floor(noise[:, 0] * (height + 1 - cut_h % 2)), tf.int32)
    centre_x = tf.cast(tf.floor(noise[:, 1] * (width + 1 - cut_w % 2)), tf.int32)
    top, left = centre_y - cut_h // 2, centre_x - cut_w // 2
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    inside_rows = (rows >= top[:, None]) & (rows < top[:, None] + cut_h)
    inside_cols = (cols >= left[:, None]) & (cols < left[:, None] + cut_w)
    inside = inside_rows[:, :, None] & inside_cols[:, None, :]
    mask = tf.cast(tf.logical_not(inside), images.dtype)[..., None]
    return images * mask
