"""The GAN losses against Keras's binary cross-entropy, Keras 2's clipped one, the hinge and
the relativistic pairing."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dcgan.losses import CrossEntropyLoss, binary_cross_entropy, make_loss

rng = np.random.default_rng(0)
REAL, FAKE = rng.normal(size=(6, 1)).astype("float32"), rng.normal(size=(6, 1)).astype("float32")
NOISE_REAL, NOISE_FAKE = (rng.random((6, 1)).astype("float32") for _ in range(2))

# Logits from beyond Keras 2's clip on both sides to ordinary ones. Between 5 and the upper
# clip, Keras 2's float32 sigmoid keeps too few digits of 1 - p for its loss to match the exact
# formula to 1e-5 (at 10 it is 5e-5 off; our graph is Keras 2's and rounds alike), and near
# the clip float32 rounding decides on which side a logit falls; the gradient test covers them.
LOGITS = np.array([-40, -20, -17, -15, -12, -5, -1, 0, 0.5, 2, 5, 20, 40], np.float32)
LOGITS_FOR_GRADIENT = np.concatenate([LOGITS, np.array([8, 10, 12, 14, 15], np.float32)])
TARGETS = np.array([0.0, 0.02, 0.05, 0.5, 1.0, 1.03, 1.05], np.float32)

# Keras 2.0.8's K.epsilon(), the probability clip of its binary_crossentropy.
KERAS2_EPSILON = 1e-7


def keras_bce(logits, targets):
    return float(keras.losses.BinaryCrossentropy(from_logits=True)(targets, logits))


def keras2_bce(logits, targets):
    """Keras 2.0.8's binary_crossentropy of a sigmoid output, and its derivative in the logit.

    Keras 2 clipped p = sigmoid(z) to [eps, 1 - eps] and took the log-odds back, so its loss is
    the exact loss at z clipped to [logit(eps), logit(1 - eps)], and its derivative is
    sigmoid(z) - t inside and 0 outside. It computed 1 - eps in float32, which rounds
    1 - 1e-7 to 1 - 1.19e-7: the upper bound is 15.94, the lower -16.12.
    """
    epsilon = np.float64(np.float32(KERAS2_EPSILON))
    upper = np.float64(np.float32(1) - np.float32(KERAS2_EPSILON))
    low, high = np.log(epsilon / (1 - epsilon)), np.log(upper / (1 - upper))
    logits, targets = np.float64(logits), np.float64(targets)
    clipped = np.clip(logits, low, high)
    value = np.maximum(clipped, 0) - clipped * targets + np.log1p(np.exp(-np.abs(clipped)))
    inside = (logits > low) & (logits < high)
    gradient = np.where(inside, 1 / (1 + np.exp(-logits)) - targets, 0.0)
    return value, gradient


def value_and_gradient(function, logits):
    logits = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = function(logits)
    return value.numpy(), tape.gradient(value, logits).numpy()


def grid(logits):
    # Every logit with every target, as two float32 columns.
    pairs = np.array(np.meshgrid(logits, TARGETS)).reshape(2, -1).T.astype(np.float32)
    return pairs[:, :1], pairs[:, 1:]


def test_clipped_cross_entropy_is_keras_2s_value():
    logits, targets = grid(LOGITS)
    value, _ = value_and_gradient(
        lambda z: binary_cross_entropy(z, targets, KERAS2_EPSILON), logits)
    np.testing.assert_allclose(value, keras2_bce(logits, targets)[0], rtol=1e-5, atol=1e-6)


def test_clipped_cross_entropy_has_keras_2s_gradient():
    logits, targets = grid(LOGITS_FOR_GRADIENT)
    _, gradient = value_and_gradient(
        lambda z: binary_cross_entropy(z, targets, KERAS2_EPSILON), logits)
    np.testing.assert_allclose(gradient, keras2_bce(logits, targets)[1], rtol=1e-5, atol=1e-6)
    saturated = np.abs(logits) >= 17
    assert np.all(gradient[saturated] == 0)


def test_unclipped_cross_entropy_is_the_exact_loss_of_the_logits():
    logits, targets = grid(LOGITS_FOR_GRADIENT)
    value, gradient = value_and_gradient(lambda z: binary_cross_entropy(z, targets), logits)
    exact = (np.maximum(logits, 0) - logits * targets
             + np.log1p(np.exp(-np.abs(np.float64(logits)))))
    np.testing.assert_allclose(value, exact, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gradient, 1 / (1 + np.exp(-np.float64(logits))) - targets,
                               rtol=1e-5, atol=1e-6)


def test_book_loss_stays_bounded_for_fakes_labelled_above_one():
    # A fake's target is 1 + 0.05 u, up to 1.05. The exact loss of a logit z is then about
    # -0.05 z for large z, so a discriminator could lower it forever by growing its logits;
    # Keras 2's clip stops it at about -0.05 * 15.94.
    book = make_loss("book", 0.05)
    exact = CrossEntropyLoss(0.0, 0.05, noise_signs=(1.0, 1.0))
    noise = np.ones((1, 1), np.float32)
    real = np.full((1, 1), -40.0, np.float32)

    def fake_loss(loss, logit):
        return float(loss.d_sum(real, np.full((1, 1), logit, np.float32), noise, noise))

    book_losses = [fake_loss(book, logit) for logit in (20.0, 1e2, 1e4, 1e6)]
    assert book_losses == pytest.approx([book_losses[0]] * 4, rel=1e-6)
    assert book_losses[0] > -1.0
    assert fake_loss(exact, 1e4) < -100.0


def test_book_loss_is_the_books_train_on_batch_on_the_concatenation():
    loss = make_loss("book", 0.05)
    # The book: fakes labelled 1, reals 0, plus 0.05 * uniform noise, one batch of both,
    # through Keras 2's clipped cross-entropy. Saturated logits make the clip count.
    real = np.concatenate([REAL, [[-30.0], [25.0]]]).astype(np.float32)
    fake = np.concatenate([FAKE, [[40.0], [-20.0]]]).astype(np.float32)
    noise_real = np.concatenate([NOISE_REAL, [[0.5], [0.9]]]).astype(np.float32)
    noise_fake = np.concatenate([NOISE_FAKE, [[1.0], [0.2]]]).astype(np.float32)
    targets = np.concatenate([1 + 0.05 * noise_fake, 0 + 0.05 * noise_real])
    expected = keras2_bce(np.concatenate([fake, real]), targets)[0].mean()
    d_loss = float(loss.d_sum(real, fake, noise_real, noise_fake)) / 8
    assert d_loss == pytest.approx(expected, rel=1e-5)
    g_loss = float(loss.g_sum(fake)) / 8
    assert g_loss == pytest.approx(keras2_bce(fake, np.zeros_like(fake))[0].mean(), rel=1e-5)
    assert not loss.real_is_positive


def test_nonsaturating_loss_moves_noisy_labels_towards_each_other():
    loss = make_loss("nonsaturating", 0.1)
    targets = np.concatenate([1 - 0.1 * NOISE_REAL, 0 + 0.1 * NOISE_FAKE])
    expected = keras_bce(np.concatenate([REAL, FAKE]), targets)
    assert float(loss.d_sum(REAL, FAKE, NOISE_REAL, NOISE_FAKE)) / 6 == pytest.approx(expected,
                                                                                      rel=1e-5)
    assert float(loss.g_sum(FAKE)) / 6 == pytest.approx(keras_bce(FAKE, np.ones_like(FAKE)),
                                                        rel=1e-5)
    assert loss.real_is_positive


def test_hinge_loss():
    loss = make_loss("hinge", 0.0)
    expected = np.maximum(0, 1 - REAL).mean() + np.maximum(0, 1 + FAKE).mean()
    assert float(loss.d_sum(REAL, FAKE, NOISE_REAL, NOISE_FAKE)) / 6 == pytest.approx(expected)
    assert float(loss.g_sum(FAKE)) / 6 == pytest.approx(-FAKE.mean())


def test_relativistic_loss_judges_each_fake_against_the_real_beside_it():
    loss = make_loss("relativistic", 0.0)
    softplus = lambda x: np.log1p(np.exp(x))  # noqa: E731
    assert float(loss.d_sum(REAL, FAKE, NOISE_REAL, NOISE_FAKE)) == pytest.approx(
        softplus(FAKE - REAL).sum(), rel=1e-6)
    assert float(loss.g_sum(FAKE, REAL)) == pytest.approx(softplus(REAL - FAKE).sum(), rel=1e-6)
    # Pairs, not means: the same logits paired otherwise give another loss.
    assert float(loss.d_sum(REAL[::-1], FAKE, NOISE_REAL, NOISE_FAKE)) != pytest.approx(
        float(loss.d_sum(REAL, FAKE, NOISE_REAL, NOISE_FAKE)))
    # Only differences count: one shift of every logit leaves both losses as they were.
    assert float(loss.d_sum(REAL + 3, FAKE + 3, NOISE_REAL, NOISE_FAKE)) == pytest.approx(
        float(loss.d_sum(REAL, FAKE, NOISE_REAL, NOISE_FAKE)), rel=1e-5)
    assert loss.pairs_reals and loss.real_is_positive
