"""The GAN losses against Keras's own binary cross-entropy and the hinge formula."""

import keras
import numpy as np
import pytest

from dcgan.losses import make_loss

rng = np.random.default_rng(0)
REAL, FAKE = rng.normal(size=(6, 1)).astype("float32"), rng.normal(size=(6, 1)).astype("float32")
NOISE_REAL, NOISE_FAKE = (rng.random((6, 1)).astype("float32") for _ in range(2))


def keras_bce(logits, targets):
    return float(keras.losses.BinaryCrossentropy(from_logits=True)(targets, logits))


def test_book_loss_is_the_books_train_on_batch_on_the_concatenation():
    loss = make_loss("book", 0.05)
    # The book: fakes labelled 1, reals 0, plus 0.05 * uniform noise, one batch of both.
    targets = np.concatenate([1 + 0.05 * NOISE_FAKE, 0 + 0.05 * NOISE_REAL])
    expected = keras_bce(np.concatenate([FAKE, REAL]), targets)
    assert float(loss.d_sum(REAL, FAKE, NOISE_REAL, NOISE_FAKE)) / 6 == pytest.approx(expected,
                                                                                      rel=1e-5)
    assert float(loss.g_sum(FAKE)) / 6 == pytest.approx(keras_bce(FAKE, np.zeros_like(FAKE)),
                                                        rel=1e-5)
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
