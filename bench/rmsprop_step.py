"""How far one RMSprop update moves the book's networks: Keras 3's RMSprop against Keras 2's.

    python bench/rmsprop_step.py [--updates 10] [--seed 0]

Builds the chollet networks at their initial weights, computes the book's losses on a batch of
20 generated and 20 random "real" images, and applies the same gradients, step after step,
with keras.optimizers.RMSprop and with dcgan.optimizers.Keras2RMSprop, both at the book's
settings. Prints, per network and update, the share of gradient components below
sqrt(1e-7) ~ 3.2e-4 (where the place of epsilon decides the step) and the median and 10th
percentile of |weight change| / learning rate.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from dcgan.losses import make_loss  # noqa: E402
from dcgan.models import build_discriminator, build_generator  # noqa: E402
from dcgan.optimizers import Keras2RMSprop  # noqa: E402
from dcgan.params import ModelParams  # noqa: E402

BATCH = 20


def book_gradients(seed: int):
    """The book's discriminator and generator gradients at the initial weights."""
    keras.utils.set_random_seed(seed)
    params = ModelParams(architecture="chollet", latent_dim=32, width=128, dropout=0.4,
                         spectral_norm=False)
    generator, discriminator = build_generator(params), build_discriminator(params)
    loss = make_loss("book", 0.05)
    rng = np.random.default_rng(seed)
    latents = rng.standard_normal((2, BATCH, 32)).astype(np.float32)
    real = rng.uniform(-1, 1, (BATCH, 32, 32, 3)).astype(np.float32)
    noise = rng.random((2, BATCH, 1)).astype(np.float32)
    fake = generator(latents[0])
    with tf.GradientTape() as tape:
        logits = discriminator(tf.concat([fake, real], axis=0), training=True)
        d_loss = loss.d_sum(logits[BATCH:], logits[:BATCH], noise[0], noise[1]) / BATCH
    d_gradients = tape.gradient(d_loss, discriminator.trainable_variables)
    with tf.GradientTape() as tape:
        logits = discriminator(generator(latents[1], training=True), training=True)
        g_loss = loss.g_sum(logits) / BATCH
    g_gradients = tape.gradient(g_loss, generator.trainable_variables)
    return {"discriminator": (discriminator, d_gradients, 0.0008),
            "generator": (generator, g_gradients, 0.0004)}


def moves(model, gradients, optimizer, learning_rate, updates):
    """|weight change| / learning rate of each update, the same gradients every time."""
    variables = [keras.Variable(v.numpy()) for v in model.trainable_variables]
    history = []
    for _ in range(updates):
        before = np.concatenate([v.numpy().ravel() for v in variables])
        optimizer.apply(gradients, variables)
        after = np.concatenate([v.numpy().ravel() for v in variables])
        history.append(np.abs(after - before) / learning_rate)
    return history


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # Moves are |weight change| / learning rate; "small" is the share of gradient components
    # below sqrt(1e-7).
    print("| network | update | small | Keras 3 median | Keras 2 median "
          "| Keras 3 p10 | Keras 2 p10 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, (model, gradients, rate) in book_gradients(args.seed).items():
        flat = np.abs(np.concatenate([g.numpy().ravel() for g in gradients]))
        small = np.mean(flat < np.sqrt(1e-7))
        keras3 = moves(model, gradients, keras.optimizers.RMSprop(rate, clipvalue=1.0), rate,
                       args.updates)
        keras2 = moves(model, gradients, Keras2RMSprop(rate, clipvalue=1.0, decay=1e-8), rate,
                       args.updates)
        for update in sorted({1, args.updates}):
            new, old = keras3[update - 1], keras2[update - 1]
            print(f"| {name} | {update} | {small:.1%} | {np.median(new):.3g} | "
                  f"{np.median(old):.3g} | {np.percentile(new, 10):.3g} | "
                  f"{np.percentile(old, 10):.3g} |")


if __name__ == "__main__":
    main()
