"""GAN losses as per-example sums, so that any split of a batch over devices adds up exactly."""

from __future__ import annotations

import tensorflow as tf


def _bce(logits, targets):
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)


class GANLoss:
    """One GAN objective.

    `d_sum` and `g_sum` return sums over the examples they are given; the caller divides by
    the global batch size. `real_is_positive` tells which sign of the logit means "real".
    """

    real_is_positive = True

    def d_sum(self, real_logits, fake_logits, real_noise, fake_noise):
        raise NotImplementedError

    def g_sum(self, fake_logits):
        raise NotImplementedError


class BookLoss(GANLoss):
    """The book's binary cross-entropy: fake is 1, real is 0, plus uniform label noise.

    The discriminator's loss is the mean over the combined batch of fakes and reals, as the
    book's single train_on_batch on the concatenation computes it; the generator is trained
    towards the "real" label 0.
    """

    real_is_positive = False

    def __init__(self, label_noise: float):
        self.label_noise = label_noise

    def d_sum(self, real_logits, fake_logits, real_noise, fake_noise):
        fake_targets = 1.0 + self.label_noise * fake_noise
        real_targets = 0.0 + self.label_noise * real_noise
        total = tf.reduce_sum(_bce(fake_logits, fake_targets)) + tf.reduce_sum(
            _bce(real_logits, real_targets))
        return total / 2.0

    def g_sum(self, fake_logits):
        return tf.reduce_sum(_bce(fake_logits, tf.zeros_like(fake_logits)))


class NonSaturatingLoss(GANLoss):
    """Goodfellow et al.'s non-saturating loss, real is 1, with optional label noise."""

    def __init__(self, label_noise: float):
        self.label_noise = label_noise

    def d_sum(self, real_logits, fake_logits, real_noise, fake_noise):
        real_targets = 1.0 - self.label_noise * real_noise
        fake_targets = 0.0 + self.label_noise * fake_noise
        total = tf.reduce_sum(_bce(real_logits, real_targets)) + tf.reduce_sum(
            _bce(fake_logits, fake_targets))
        return total / 2.0

    def g_sum(self, fake_logits):
        return tf.reduce_sum(_bce(fake_logits, tf.ones_like(fake_logits)))


class HingeLoss(GANLoss):
    """The hinge loss of Lim & Ye 2017 and Miyato et al. 2018 (SNGAN, BigGAN)."""

    def d_sum(self, real_logits, fake_logits, real_noise, fake_noise):
        return tf.reduce_sum(tf.nn.relu(1.0 - real_logits)) + tf.reduce_sum(
            tf.nn.relu(1.0 + fake_logits))

    def g_sum(self, fake_logits):
        return -tf.reduce_sum(fake_logits)


def make_loss(name: str, label_noise: float) -> GANLoss:
    if name == "book":
        return BookLoss(label_noise)
    if name == "nonsaturating":
        return NonSaturatingLoss(label_noise)
    if name == "hinge":
        return HingeLoss()
    raise ValueError(f"unknown loss {name!r}")
