"""Times one training step of the book's DCGAN: this project's step, the book's loop, the ceiling.

    python bench/train_speed.py [--steps 5] [--device cpu|gpu] [--full-recipe]

Prints seconds per step, images per second, achieved GFLOP/s and the ratio to the machine's
ceiling, measured as TensorFlow's own 5x5 256->256 Conv2D at 32x32, batch 20, in the row's
precision: float32 with XLA off and on, then mixed precision (`train.mixed_precision: on`:
bfloat16 on a CPU, float16 on a GPU) without XLA. With --full-recipe, also times the book's
whole recipe (10000 steps) through the train function, in its own precision (float32) and with
`auto` XLA as resolved here.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

from dcgan import training  # noqa: E402
from dcgan.dataset import make_dataset  # noqa: E402
from dcgan.engine import resolve_engine  # noqa: E402
from dcgan.gan import GAN  # noqa: E402
from dcgan.models import build_discriminator, build_generator, generator_input_size  # noqa: E402
from dcgan.recipes import load_recipe  # noqa: E402

BATCH = 20
PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def conv_flops(model: keras.Model) -> float:
    """Forward multiply-adds x 2 of every Conv, ConvTranspose and Dense layer, per image."""
    total = 0.0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2DTranspose):
            _, height, width, _ = layer.input.shape
            kernel = np.prod(layer.kernel.shape)
            total += 2 * height * width * kernel
        elif isinstance(layer, layers.Conv2D):
            _, height, width, _ = layer.output.shape
            total += 2 * height * width * np.prod(layer.kernel.shape)
        elif isinstance(layer, layers.Dense):
            total += 2 * np.prod(layer.kernel.shape)
    return total


def step_flops(generator, discriminator, batch: int) -> float:
    # Discriminator step: generate, forward and backward (twice the forward) on 2*batch images.
    # Generator step: forward through both, backward through both (twice the forward).
    g, d = conv_flops(generator), conv_flops(discriminator)
    return batch * (g + 2 * d * 3) + batch * 3 * (g + d)


def recipe(name: str, **train_overrides):
    """A recipe from recipes/, timed without logging, snapshots or checkpoints in the way, in
    its own precision unless train_overrides set one."""
    return load_recipe(name, PARAMS, **({
        "log_every": 100, "snapshot_every": 10**9, "checkpoint_every": 10**9,
        "deterministic": False, "jit_compile": "auto", "distribute": "off"} | train_overrides))


def time_project_step(images, name, steps, warmup, **overrides) -> tuple[float, float]:
    """Seconds per step of this project's compiled step, and its FLOPs per step."""
    model, train = recipe(name, iterations=warmup + steps, **overrides)
    gan = GAN(model, train, resolve_engine(train))
    iterator = iter(make_dataset(images, train, generator_input_size(model), 0))
    for _ in range(warmup):
        float(gan.step_fn(iterator)["d_loss"])
    started = time.perf_counter()
    for _ in range(steps):
        metrics = gan.step_fn(iterator)
    float(metrics["d_loss"])
    return ((time.perf_counter() - started) / steps,
            step_flops(gan.generator, gan.discriminator, train.batch_size))


def time_book_loop(images, steps, warmup) -> float:
    """The book's loop, ported to Keras 3: predict, then two train_on_batch calls."""
    model, _ = recipe("chollet")
    generator, discriminator = build_generator(model), build_discriminator(model)
    discriminator.compile(optimizer=keras.optimizers.RMSprop(0.0008, clipvalue=1.0),
                          loss=keras.losses.BinaryCrossentropy(from_logits=True))
    x = np.asarray(images, np.float32) / 127.5 - 1.0
    latent = np.random.normal(size=(BATCH, model.latent_dim)).astype(np.float32)
    labels = np.concatenate([np.ones((BATCH, 1)), np.zeros((BATCH, 1))]).astype(np.float32)
    # Trace the discriminator's train function while it is trainable, then freeze it inside
    # the combined model, as the book does.
    discriminator.train_on_batch(np.concatenate([generator.predict(latent, verbose=0),
                                                 x[:BATCH]]), labels)
    discriminator.trainable = False
    gan_input = keras.Input((model.latent_dim,))
    gan = keras.Model(gan_input, discriminator(generator(gan_input)))
    gan.compile(optimizer=keras.optimizers.RMSprop(0.0004, clipvalue=1.0),
                loss=keras.losses.BinaryCrossentropy(from_logits=True))
    start = 0

    def book_step():
        nonlocal start
        z = np.random.normal(size=(BATCH, model.latent_dim)).astype(np.float32)
        generated = generator.predict(z, verbose=0)
        combined = np.concatenate([generated, x[start:start + BATCH]])
        noisy = labels + 0.05 * np.random.random(labels.shape).astype(np.float32)
        discriminator.train_on_batch(combined, noisy)
        z = np.random.normal(size=(BATCH, model.latent_dim)).astype(np.float32)
        gan.train_on_batch(z, np.zeros((BATCH, 1), np.float32))
        start = 0 if start + 2 * BATCH > len(x) else start + BATCH

    before = [w.numpy().copy() for w in discriminator.weights]
    for _ in range(warmup):
        book_step()
    if all(np.array_equal(a, w.numpy()) for a, w in zip(before, discriminator.weights)):
        raise RuntimeError("the ported book loop did not train the discriminator")
    started = time.perf_counter()
    for _ in range(steps):
        book_step()
    return (time.perf_counter() - started) / steps


def time_ceiling(dtype: str = "float32", repeats: int = 10) -> float:
    """GFLOP/s of one 5x5 256->256 Conv2D at 32x32, batch 20, in `dtype`: the machine's conv
    ceiling."""
    inputs = tf.cast(tf.random.normal((BATCH, 32, 32, 256)), dtype)
    kernel = tf.cast(tf.random.normal((5, 5, 256, 256)), dtype)
    conv = tf.function(lambda x: tf.nn.conv2d(x, kernel, 1, "SAME"))
    for _ in range(3):
        conv(inputs).numpy()
    started = time.perf_counter()
    for _ in range(repeats):
        output = conv(inputs)
    output.numpy()
    seconds = (time.perf_counter() - started) / repeats
    return 2 * BATCH * 32 * 32 * 256 * 256 * 25 / seconds / 1e9


def time_full_recipe(images) -> float:
    """Wall seconds of the book's full 10000-step recipe through training.fit."""
    model, train = recipe("chollet", log_every=1000, snapshot_every=1000, checkpoint_every=10000)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        training.fit(images, model, train, folder, "")
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--skip-book", action="store_true", help="do not time the book's loop")
    parser.add_argument("--full-recipe", action="store_true")
    args = parser.parse_args()
    if args.device == "cpu":
        tf.config.set_visible_devices([], "GPU")
    elif not tf.config.list_physical_devices("GPU"):
        sys.exit("error: --device gpu but TensorFlow sees no GPU")
    images = np.random.default_rng(0).integers(0, 256, (5000, 32, 32, 3), dtype=np.uint8)
    device = (tf.config.experimental.get_device_details(
        tf.config.list_physical_devices("GPU")[0]).get("device_name", "GPU")
        if args.device == "gpu" else f"CPU, {os.cpu_count()} cores")

    mixed = "float16" if args.device == "gpu" else "bfloat16"
    ceilings = {"float32": time_ceiling(), mixed: time_ceiling(mixed)}
    engines = (("off", "off", "float32"), ("on", "off", "float32"), ("off", "on", mixed))
    rows = []
    for name, label, steps in (("chollet", "book's recipe", args.steps),
                               ("compact", "default recipe", args.steps * 4)):
        _, train = recipe(name)
        for jit, precision, dtype in engines:
            seconds, flops = time_project_step(images, name, steps, args.warmup,
                                               jit_compile=jit, mixed_precision=precision)
            rows.append((f"{label}, this project's step, XLA {jit}, {dtype}", seconds,
                         train.batch_size, flops, dtype))
        if name == "chollet" and not args.skip_book:
            rows.append(("book's network, the book's loop ported to Keras 3, float32",
                         time_book_loop(images, args.steps, args.warmup), BATCH, flops,
                         "float32"))

    print(f"\ndevice: {device}; TensorFlow {tf.__version__}; conv ceiling "
          + ", ".join(f"{value:.0f} GFLOP/s in {dtype}" for dtype, value in ceilings.items())
          + " (5x5 256->256 Conv2D, 32x32, batch 20)\n")
    print("| what | s/step | images/s | GFLOP/step | GFLOP/s | of its ceiling |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, seconds, batch, flops, dtype in rows:
        achieved = flops / seconds / 1e9
        print(f"| {name} | {seconds:.3f} | {batch / seconds:.0f} | {flops / 1e9:.1f} | "
              f"{achieved:.0f} | {achieved / ceilings[dtype]:.0%} |")
    if args.full_recipe:
        print(f"\nbook's full recipe (10000 steps, batch 20): "
              f"{time_full_recipe(images):.1f} s wall")


if __name__ == "__main__":
    main()
