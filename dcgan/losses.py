"""GAN losses as per-example sums, so that any split of a batch over devices adds up exactly."""

from __future__ import annotations

import tensorflow as tf

# Keras 2's K.epsilon(), with which its binary_crossentropy clipped probabilities.
KERAS2_EPSILON = 1e-7


def binary_cross_entropy(logits, targets, probability_clip: float | None = None):
    """Per-element binary cross-entropy of sigmoid(logits) against targets.

    Args:
        probability_clip: None for the exact loss of the logits. A number `eps` computes what
            Keras 2's binary_crossentropy did with a sigmoid output: the probabilities are
            clipped to [eps, 1 - eps] and turned back into logits, in float32, so the loss is
            flat, and its gradient zero, beyond logits of about -16.1 and +15.9 for eps 1e-7.
            With a target above 1 the exact loss falls without bound as the logit grows;
            the clipped one stops.
    """
    if probability_clip is not None:
        # The graph Keras 2 built (sigmoid, clip, log-odds) step by step, so that float32
        # rounds where it rounded: 1 - eps is 1 - 1.19e-7 in float32, hence the asymmetric
        # bounds.
        probabilities = tf.sigmoid(logits)
        epsilon = tf.constant(probability_clip, probabilities.dtype)
        probabilities = tf.clip_by_value(probabilities, epsilon, 1 - epsilon)
        logits = tf.math.log(probabilities / (1 - probabilities))
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)


class GANLoss:
    """One GAN objective.

    `d_sum` and `g_sum` return sums over the examples they are given; the caller divides by
    the global batch size. `real_is_positive` tells which sign of the logit means "real".
    A loss that `pairs_reals` judges each fake against the real image beside it in the batch,
    so its generator's loss needs the discriminator's logits on the reals too.
    """

    real_is_positive = True
    pairs_reals = False

    def d_sum(self, real_logits, fake_logits, real_noise, fake_noise):
        raise NotImplementedError

    def g_sum(self, fake_logits, real_logits=None, weights=None):
        """The generator's loss summed over its fakes; given `weights` (per image, broadcast
        over the logits' columns), each fake's terms times its weight."""
        raise NotImplementedError


class CrossEntropyLoss(GANLoss):
    """Binary cross-entropy on the discriminator's logits, with uniform label noise.

    Args:
        real_label: the target for real images (the fake target is the other one).
        label_noise: the noise amplitude; each target gets `label_noise * u`, u in [0, 1).
        noise_signs: the direction the noise moves the (real, fake) targets.
        probability_clip: see `binary_cross_entropy`; None for the exact loss.
    """

    def __init__(self, real_label: float, label_noise: float,
                 noise_signs: tuple[float, float], probability_clip: float | None = None):
        self.probability_clip = probability_clip
        self.real_label, self.fake_label = real_label, 1.0 - real_label
        self.real_is_positive = real_label == 1.0
        self.real_noise, self.fake_noise = (sign * label_noise for sign in noise_signs)

    def d_sum(self, real_logits, fake_logits, real_noise, fake_noise):
        # Half the sum over fakes and reals: the mean over the combined batch, as the book's
        # single train_on_batch on the concatenation computes it.
        real_targets = self.real_label + self.real_noise * real_noise
        fake_targets = self.fake_label + self.fake_noise * fake_noise
        total = tf.reduce_sum(self._loss(real_logits, real_targets)) + tf.reduce_sum(
            self._loss(fake_logits, fake_targets))
        return total / 2.0

    def g_sum(self, fake_logits, real_logits=None, weights=None):
        return _weighted_sum(
            self._loss(fake_logits, tf.fill(tf.shape(fake_logits), self.real_label)), weights)

    def _loss(self, logits, targets):
        return binary_cross_entropy(logits, targets, self.probability_clip)


class HingeLoss(GANLoss):
    """The hinge loss of Lim & Ye 2017 and Miyato et al. 2018 (SNGAN, BigGAN)."""

    def d_sum(self, real_logits, fake_logits, real_noise, fake_noise):
        return tf.reduce_sum(tf.nn.relu(1.0 - real_logits)) + tf.reduce_sum(
            tf.nn.relu(1.0 + fake_logits))

    def g_sum(self, fake_logits, real_logits=None, weights=None):
        return -_weighted_sum(fake_logits, weights)


class RelativisticLoss(GANLoss):
    """The relativistic pairing loss (RpGAN; Jolicoeur-Martineau 2019, Huang et al. 2024).

    The discriminator is asked how much more real the i-th real image looks than the i-th
    fake, softplus(D(fake) - D(real)); the generator the reverse. Each fake is judged against
    a real image rather than against a fixed label.
    """

    pairs_reals = True

    def d_sum(self, real_logits, fake_logits, real_noise, fake_noise):
        return tf.reduce_sum(tf.nn.softplus(fake_logits - real_logits))

    def g_sum(self, fake_logits, real_logits=None, weights=None):
        return _weighted_sum(tf.nn.softplus(real_logits - fake_logits), weights)


def _weighted_sum(terms, weights):
    return tf.reduce_sum(terms if weights is None else weights * terms)


def make_loss(name: str, label_noise: float) -> GANLoss:
    if name == "book":
        # The book labels fakes 1 and reals 0, adds the noise to both labels, and ran on
        # Keras 2, whose binary_crossentropy clipped the sigmoid's probabilities. The clip
        # matters here: fakes' targets reach 1.05, for which the exact loss has no minimum.
        return CrossEntropyLoss(0.0, label_noise, noise_signs=(1.0, 1.0),
                                probability_clip=KERAS2_EPSILON)
    if name == "nonsaturating":
        # Goodfellow et al.'s non-saturating loss; noise moves each label towards the other.
        return CrossEntropyLoss(1.0, label_noise, noise_signs=(-1.0, 1.0))
    if name == "hinge":
        return HingeLoss()
    if name == "relativistic":
        return RelativisticLoss()
    raise ValueError(f"unknown loss {name!r}")
