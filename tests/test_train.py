"""The train stage: the book's networks, the compiled step, checkpoints and resume."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from dcgan import pixels, train_log, training
from dcgan.artifacts import save_npz
from dcgan.augment import GATES, NOISE_DIM
from dcgan.cli import run
from dcgan.dataset import make_dataset, make_datasets
from dcgan.engine import resolve_engine
from dcgan.gan import GAN
from dcgan.losses import make_loss
from dcgan.models import (
    Blur,
    MinibatchStddev,
    NoiseInput,
    PixelShuffle,
    build_discriminator,
    build_generator,
    generator_input_size,
)
from stages import train as train_stage
from tiny import random_images, recipe, same, tiny_params, weights, write_params

REPO = Path(__file__).resolve().parents[1]


def network(architecture, **overrides):
    """Tiny params for one architecture: its own recipe, or the compact one for resnet."""
    if architecture == "resnet":
        return recipe("compact", model__architecture="resnet", **overrides)
    return recipe(architecture, **overrides)


def train_save_and_reload(model, train, tmp_path):
    """Trains, saves the stage's outputs and reloads the generator as the sample stage does;
    the reloaded generator must draw what the trained sampler draws."""
    from dcgan import train_outputs
    from dcgan.sampling import load_generator

    result = training.fit(random_images(), model, train, tmp_path / "checkpoints", "d")
    train_outputs.save_outputs(result, tmp_path / "models")
    generator = load_generator(tmp_path / "models" / "generator.keras")
    inputs = np.random.default_rng(0).standard_normal(
        (4, generator_input_size(model))).astype(np.float32)
    assert np.allclose(generator(inputs), result.gan.sampler(inputs), atol=1e-6)
    return result, generator


def test_books_networks_have_the_books_parameter_counts():
    model, _ = recipe(model__latent_dim=32, model__width=128)
    generator, discriminator = build_generator(model), build_discriminator(model)
    assert generator.count_params() == 6_264_579
    assert discriminator.count_params() == 790_913


@pytest.mark.parametrize("name", ["chollet", "compact", "resnet"])
def test_network_shapes(name):
    model, _ = network(name)
    generator, discriminator = build_generator(model), build_discriminator(model)
    # Latent vectors far out, so that only the final tanh can keep the images in [-1, 1].
    images = generator(100 * np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32))
    assert images.shape == (4, 32, 32, 3)
    assert np.all(np.abs(np.asarray(images)) <= 1.0)
    assert discriminator(images).shape == (4, 1)


@pytest.mark.parametrize("name", ["chollet", "compact", "resnet"])
def test_each_step_moves_only_its_own_network(name):
    model, train = network(name)
    gan = GAN(model, train, resolve_engine(train))
    batch = next(iter(make_dataset(random_images(), train, model.latent_dim, 0)))
    generator_before, discriminator_before = weights(gan.generator), weights(gan.discriminator)

    metrics = gan.discriminator_step(batch)
    assert np.isfinite(float(metrics["d_loss"]))
    assert same(weights(gan.generator), generator_before)
    assert not same(weights(gan.discriminator), discriminator_before)

    discriminator_after = weights(gan.discriminator)
    metrics = gan.generator_step(batch)
    assert np.isfinite(float(metrics["g_loss"]))
    assert same(weights(gan.discriminator), discriminator_after)
    assert not same(weights(gan.generator), generator_before)


def test_books_data_order_is_sequential_and_shuffled_order_is_a_permutation():
    images = np.arange(24, dtype=np.uint8).reshape(24, 1, 1, 1) * np.ones((1, 32, 32, 3),
                                                                          np.uint8)
    model, train = recipe(train__batch_size=8, train__iterations=6, train__pixel_range="unit")
    first_pixels = [np.rint(np.asarray(b["real"])[:, 0, 0, 0] * 255).astype(int)
                    for b in make_dataset(images, train, 8, 0)]
    assert np.concatenate(first_pixels).tolist() == list(range(24)) * 2
    model, train = recipe(train__batch_size=8, train__iterations=3, train__shuffle=True,
                          train__pixel_range="unit")
    epoch = np.concatenate([np.rint(np.asarray(b["real"])[:, 0, 0, 0] * 255).astype(int)
                            for b in make_dataset(images, train, 8, 0)])
    assert sorted(epoch.tolist()) == list(range(24)) and epoch.tolist() != list(range(24))


def test_mirror_flips_about_half_the_reals_and_leaves_every_other_draw_alone():
    # Each image's columns hold its index and the column number, so a flip shows as reversed
    # columns and nothing else about the image changes.
    images = np.zeros((64, 32, 32, 3), np.uint8)
    images[:, :, :, 0] = np.arange(64, dtype=np.uint8)[:, None, None]
    images[:, :, :, 1] = np.arange(32, dtype=np.uint8)[None, None, :] * 8
    _, plain = recipe(train__batch_size=64, train__iterations=2)
    _, mirrored = recipe(train__batch_size=64, train__iterations=2, train__mirror=True)
    for a, b in zip(make_dataset(images, plain, 8, 0), make_dataset(images, mirrored, 8, 0)):
        assert sorted(a) == sorted(b)
        for name in a:
            if name != "real":
                assert np.array_equal(a[name], b[name]), name
        real, flipped = np.asarray(a["real"]), np.asarray(b["real"])
        assert np.array_equal(real[..., 0], flipped[..., 0])
        same_side = np.all(flipped == real, axis=(1, 2, 3))
        reversed_side = np.all(flipped == real[:, :, ::-1], axis=(1, 2, 3))
        assert np.all(same_side | reversed_side)
        assert 16 <= reversed_side.sum() <= 48
    # The flips are a function of (seed, step): a second pass, as a resumed run makes, repeats them.
    first, second = ([np.asarray(b["real"]) for b in make_dataset(images, mirrored, 8, 0)]
                     for _ in range(2))
    assert all(np.array_equal(x, y) for x, y in zip(first, second))


NO_LATE = {"train__late_share": 0.0, "train__late_batch_size": 0}


def test_the_late_batches_are_those_a_run_of_the_late_batch_size_draws():
    # Six steps, the last half at batch 16: steps 0 to 2 are the batch-8 run's, steps 3 to 5
    # the batch-16 run's, and a run resumed at step 4 or 2 sees the same batches from there.
    images = random_images()
    _, plain = recipe("compact", **NO_LATE)
    _, late = recipe("compact", train__late_share=0.5, train__late_batch_size=16)
    _, large = recipe("compact", train__batch_size=16, **NO_LATE)
    batches = {name: [{key: np.asarray(value) for key, value in b.items()}
                      for b in make_dataset(images, params, 8, 0)]
               for name, params in (("plain", plain), ("late", late), ("large", large))}
    assert [len(b["real"]) for b in batches["late"]] == [8, 8, 8, 16, 16, 16]
    expected = batches["plain"][:3] + batches["large"][3:]
    for start in (0, 2, 4):
        resumed = list(make_dataset(images, late, 8, start))
        assert len(resumed) == 6 - start
        for got, want in zip(resumed, expected[start:]):
            assert sorted(got) == sorted(want)
            assert all(np.array_equal(got[key], want[key]) for key in want)


def test_a_late_batch_leaves_the_run_as_it_was_until_its_share_begins(tmp_path):
    # Each part of the data has its batch size in its element spec, as a run of that size
    # has, so until the late share the traced step and its sums are the plain run's.
    images = random_images()
    model, plain = recipe("compact", train__log_every=1, **NO_LATE)
    _, late = recipe("compact", train__log_every=1, train__late_share=0.5,
                     train__late_batch_size=16)
    _, large = recipe("compact", train__batch_size=16, **NO_LATE)
    runs = [training.fit(images, model, params, tmp_path / name, "d")
            for name, params in (("plain", plain), ("late", late))]
    losses = [[(row["d_loss"], row["g_loss"]) for row in run.log_rows] for run in runs]
    assert losses[1][:3] == losses[0][:3]
    assert all(a != b for a, b in zip(losses[0][3:], losses[1][3:]))
    parts = make_datasets(images, late, 8, 0)
    assert [last for last, _ in parts] == [3, 6]
    for (_, part), params in zip(parts, (plain, large)):
        assert part.element_spec == make_dataset(images, params, 8, 0).element_spec


@pytest.mark.parametrize("consistency", [0.0, 1.0], ids=["plain", "bcr"])
def test_gates_lengthen_each_augmentation_noise_and_leave_every_draw_as_it_was(consistency):
    images = random_images()
    _, plain = recipe("compact", train__consistency_weight=consistency)
    _, gated = recipe("compact", train__consistency_weight=consistency,
                      train__augment_probability=0.5)
    for step, (a, b) in enumerate(zip(make_dataset(images, plain, 8, 0),
                                      make_dataset(images, gated, 8, 0))):
        assert sorted(a) == sorted(b)
        gates = []
        for name in a:
            if name.startswith("aug_"):
                assert b[name].shape == (plain.batch_size_at(step), NOISE_DIM + GATES)
                assert np.array_equal(a[name], b[name][:, :NOISE_DIM]), name
                gates.append(np.asarray(b[name][:, NOISE_DIM:]))
            else:
                assert np.array_equal(a[name], b[name]), name
        # Each noise's gates are its own draw, not another's.
        assert len({gate.tobytes() for gate in gates}) == len(gates) == 3 + 2 * (consistency > 0)
        assert 0.2 < np.mean(np.concatenate(gates) < 0.5) < 0.8


def test_the_train_log_records_the_augmentation_chance_of_every_step(tmp_path):
    images = random_images()
    # Policies that always apply log 1, no policies 0, so that every log has the column that
    # dvc.yaml's plot draws.
    model, train = recipe("compact", train__log_every=1)
    plain = training.fit(images, model, train, tmp_path / "plain", "d")
    assert [row["augment_probability"] for row in plain.log_rows] == [1.0] * 6
    model, train = recipe("compact", train__log_every=1, train__augment=[])
    bare = training.fit(images, model, train, tmp_path / "bare", "d")
    assert [row["augment_probability"] for row in bare.log_rows] == [0.0] * 6
    model, train = recipe("compact", train__log_every=1, train__augment_probability=0.5,
                          train__augment_target=0.6, train__augment_ramp=64)
    ada = training.fit(images, model, train, tmp_path / "ada", "d")
    chances = [row["augment_probability"] for row in ada.log_rows]
    # Moved by four steps' 32 reals over 64 on step 4, to one end or the other.
    assert chances[:3] == [0.5] * 3 and chances[3] in (0.0, 1.0) and chances[3:] == [chances[3]] * 3
    text = train_log.rows_to_csv(ada.log_rows)
    assert text.splitlines()[0].endswith(",seconds,augment_probability")
    # With the fade over the last half, each row gives the chance the next step takes.
    model, train = recipe("compact", train__log_every=1, train__augment_fade=0.5)
    faded = training.fit(images, model, train, tmp_path / "faded", "d")
    np.testing.assert_allclose([row["augment_probability"] for row in faded.log_rows],
                               [1, 1, 1, 2 / 3, 1 / 3, 0], rtol=1e-6)


def test_gan_hook_changes_the_gan_before_its_first_step(tmp_path):
    model, train = recipe()
    images = random_images()
    plain = training.fit(images, model, train, tmp_path / "plain",
                         "d", stop_after=1)
    seen = []

    def hook(gan):
        seen.append((gan, int(gan.step_counter.numpy())))
        gan.loss = make_loss("nonsaturating", train.label_noise)

    hooked = training.fit(images, model, train, tmp_path / "hooked",
                          "d", stop_after=1,
                          gan_hook=hook)
    assert seen == [(hooked.gan, 0)]
    # The step was traced with the hook's loss: the same first batch scores otherwise.
    assert hooked.log_rows[0]["d_loss"] != plain.log_rows[0]["d_loss"]


def test_a_float16_policy_does_not_outlive_its_run():
    import keras

    from dcgan.engine import Engine

    model, train = recipe("compact")
    mixed = GAN(model, train, Engine(tf.distribute.get_strategy(), False, "mixed_float16"))
    assert mixed.generator.layers[1].dtype_policy.name == "mixed_float16"
    # Whatever the process builds next takes float32 again, as before the float16 run.
    assert keras.mixed_precision.global_policy().name == "float32"
    assert keras.layers.Dense(2).dtype_policy.name == "float32"
    plain = GAN(model, train, Engine(tf.distribute.get_strategy(), False, "float32"))
    assert {layer.dtype_policy.name for layer in plain.generator.layers} == {"float32"}


def run_stage(tmp_path, params, *extra):
    data = tmp_path / "train.npz"
    if not data.exists():
        save_npz(data, images=random_images())
    args = ["--params", str(write_params(tmp_path / "params.yaml", params)),
            "--data", str(data), "--checkpoints", str(tmp_path / "checkpoints"),
            "--out", str(tmp_path / "models"), *extra]
    return run(train_stage.main, args)


@pytest.mark.parametrize("overrides, message", [
    ({"train__batch_size": 65}, "error: train.batch_size: 65 is larger than the 64 training"),
    ({"train__late_share": 0.5, "train__late_batch_size": 72},
     "error: train.late_batch_size: 72 is larger than the 64 training"),
    ({"train__iterations": 0}, "error: train.iterations: expected an integer >= 1, found 0"),
    ({"model__architecture": "big"},
     "error: model.architecture: expected one of 'compact', 'resnet', 'chollet'"),
    ({"train__g_learning_rate": -1}, "error: train.g_learning_rate: expected a number > 0.0"),
    ({"model__architecture": "compact", "model__minibatch_std_group": 3},
     "error: model.minibatch_std_group: 3 does not divide the 8 images each device's"),
    ({"model__architecture": "compact", "model__minibatch_std_group": 4, "train__late_share": 0.5,
      "train__late_batch_size": 10},
     "error: model.minibatch_std_group: 4 does not divide the 10 images each device's"),
])
def test_bad_params_exit_with_one_line(tmp_path, capsys, monkeypatch, overrides, message):
    # As on a machine without a GPU, whatever this one has.
    devices = tf.config.list_logical_devices
    monkeypatch.setattr(tf.config, "list_logical_devices",
                        lambda kind=None: [] if kind == "GPU" else devices(kind))
    assert run_stage(tmp_path, tiny_params(**overrides)) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and "\n" not in err
    assert not (tmp_path / "models").exists()


def test_stage_writes_models_only_when_training_completes(tmp_path):
    params = tiny_params()
    assert run_stage(tmp_path, params, "--stop-after", "0") == 0
    assert not (tmp_path / "models").exists()
    assert not (tmp_path / "checkpoints" / "latest.json").exists()
    assert run_stage(tmp_path, params, "--stop-after", "3") == 0
    assert not (tmp_path / "models").exists()
    assert (tmp_path / "checkpoints" / "latest.json").exists()
    assert run_stage(tmp_path, params) == 0
    models = tmp_path / "models"
    assert {p.name for p in models.iterdir()} == {
        "generator.keras", "discriminator.keras", "train_log.csv", "snapshots", "recipe.json"}
    rows = list(csv.DictReader((models / "train_log.csv").open()))
    assert list(rows[0]) == [*train_log.COLUMNS, "augment_probability"]
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert len(list((models / "snapshots").glob("step_*.png"))) == 3
    recipe_json = json.loads((models / "recipe.json").read_text())
    assert recipe_json["train"]["clipvalue"] == 1.0 and recipe_json["model"]["width"] == 4


def test_the_stage_refuses_a_checkpoint_folder_it_did_not_write(tmp_path, capsys):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    assert run_stage(tmp_path, tiny_params()) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {folder}: holds notes.txt") and "\n" not in err
    assert (folder / "notes.txt").read_text() == "mine"


def test_kill_9_loses_only_the_steps_since_the_last_checkpoint(tmp_path):
    params = tiny_params(train__iterations=240, train__checkpoint_every=20,
                         train__snapshot_every=50, train__log_every=10)
    whole = tmp_path / "whole"
    whole.mkdir()
    assert run_stage(whole, params) == 0

    killed = tmp_path / "killed"
    killed.mkdir()
    write_params(killed / "params.yaml", params)
    save_npz(killed / "train.npz", images=random_images())
    command = [sys.executable, "-m", "stages.train", "--params", str(killed / "params.yaml"),
               "--data", str(killed / "train.npz"), "--checkpoints", str(killed / "checkpoints"),
               "--out", str(killed / "models")]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL)
    pointer = killed / "checkpoints" / "latest.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if pointer.exists() and json.loads(pointer.read_text())["step"] >= 40:
            break
        time.sleep(0.05)
    assert process.poll() is None, "training finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "models").exists()
    assert run_stage(killed, params) == 0
    assert (killed / "models" / "train_log.csv").read_text() != ""
    whole_rows = list(csv.DictReader((whole / "models" / "train_log.csv").open()))
    killed_rows = list(csv.DictReader((killed / "models" / "train_log.csv").open()))
    assert [(r["step"], r["d_loss"], r["g_loss"]) for r in killed_rows] == [
        (r["step"], r["d_loss"], r["g_loss"]) for r in whole_rows]


def test_g_top_multiplier_widens_the_generators_32x32_stage_alone():
    def convolutions(generator):
        return [(layer.output.shape[1], layer.filters) for layer in generator.layers
                if type(layer).__name__ == "Conv2D"]

    model, _ = recipe("compact")
    width = model.width
    assert convolutions(build_generator(model)) == [
        (8, 4 * width), (16, 2 * width), (32, width), (32, 3)]
    model, _ = recipe("compact", model__g_top_multiplier=3)
    generator = build_generator(model)
    assert convolutions(generator) == [(8, 4 * width), (16, 2 * width), (32, 3 * width), (32, 3)]
    assert generator.output.shape[1:] == (32, 32, 3)


def test_g_top_convs_add_3x3_convolutions_at_the_generators_32x32_stage_alone():
    def layer_kinds(generator):
        return [(type(layer).__name__, layer.output.shape[1]) for layer in generator.layers
                if type(layer).__name__ in ("Conv2D", "BatchNormalization", "ReLU")]

    model, _ = recipe("compact")
    width = model.width
    plain = layer_kinds(build_generator(model))
    model, _ = recipe("compact", model__g_top_convs=2, model__g_top_multiplier=3)
    generator = build_generator(model)
    top = [("Conv2D", 32), ("BatchNormalization", 32), ("ReLU", 32)]
    assert layer_kinds(generator) == plain[:-1] + top * 2 + plain[-1:]
    assert [layer.filters for layer in generator.layers if type(layer).__name__ == "Conv2D"] == [
        4 * width, 2 * width, 3 * width, 3 * width, 3 * width, 3]
    assert generator.output.shape[1:] == (32, 32, 3)


def test_g_skip_sums_each_stages_rgb_upsampled_before_the_tanh():
    model, _ = recipe("compact", model__g_skip=True)
    generator = build_generator(model)
    to_rgb = [(layer.output.shape[1], layer.kernel_size) for layer in generator.layers
              if type(layer).__name__ == "Conv2D" and layer.filters == 3]
    assert to_rgb == [(4, (1, 1)), (8, (1, 1)), (16, (1, 1)), (32, (3, 3))]
    # Each stage's RGB is the upsampled image of the stages before plus its own: zero every
    # stage's RGB but the 4x4 one, and the output is tanh of the 4x4 image upsampled three
    # times.
    for layer in generator.layers:
        if type(layer).__name__ == "Conv2D" and layer.filters == 3 and layer.output.shape[1] > 4:
            layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    latent = np.random.default_rng(0).normal(size=(4, model.latent_dim)).astype("float32")
    coarse = keras.Model(generator.input, [layer.output for layer in generator.layers
                                           if type(layer).__name__ == "Conv2D"
                                           and layer.filters == 3][0])(latent)
    upsampled = coarse
    for _ in range(3):
        upsampled = keras.layers.UpSampling2D(2, interpolation="bilinear")(upsampled)
    np.testing.assert_allclose(generator(latent), np.tanh(upsampled), rtol=1e-5, atol=1e-6)
    assert generator.output.shape[1:] == (32, 32, 3)


@pytest.mark.parametrize("architecture, which, sides", [
    ("compact", 4, [4, 8, 16, 32, 32]), ("compact", 16, [16, 32, 32]),
    ("compact", 32, [32, 32]), ("resnet", 4, [4, 8, 8, 16, 16, 32, 32]),
    ("resnet", 16, [16, 16, 32, 32]), ("resnet", 32, [32, 32])])
def test_self_modulation_takes_each_images_scale_and_shift_from_its_latent(architecture, which,
                                                                           sides):
    top_convs = {"model__g_top_convs": 1} if architecture == "compact" else {}
    model, _ = network(architecture, model__g_self_modulation=which, **top_convs)
    generator = build_generator(model)
    norms = [layer for layer in generator.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    modulated = [norm for norm in norms if not (norm.center or norm.scale)]
    assert len(norms) == {"compact": 5, "resnet": 7}[architecture]
    assert [norm.output.shape[1] for norm in modulated] == sides
    # The latent's projection, then each modulated normalisation's hidden layer, scale and
    # shift.
    denses = [layer for layer in generator.layers if isinstance(layer, keras.layers.Dense)]
    assert len(denses) == 1 + 3 * len(modulated)
    hidden, scale, shift = denses[1:4]
    rng = np.random.default_rng(0)
    for layer in (hidden, scale, shift):  # weights other than the initial ones
        layer.set_weights([rng.normal(size=w.shape).astype(np.float32)
                           for w in layer.get_weights()])
    # The first sum of a modulated scale's product and a shift.
    [joined] = [layer for layer in generator.layers if isinstance(layer, keras.layers.Add)
                and any(isinstance(tensor._keras_history.operation, keras.layers.Multiply)
                        for tensor in layer.input)][:1]
    probe = keras.Model(generator.input, [modulated[0].output, joined.output])
    latents = rng.normal(size=(4, model.latent_dim)).astype(np.float32)
    normalized, out = (np.asarray(t) for t in probe(latents, training=False))

    def dense(layer, x):
        kernel, bias = layer.get_weights()
        return x @ kernel + bias

    h = np.maximum(dense(hidden, latents), 0.0)
    expected = (normalized * dense(scale, h)[:, None, None, :]
                + dense(shift, h)[:, None, None, :])
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    assert generator.output.shape[1:] == (32, 32, 3)


def test_d_top_convs_add_3x3_convolutions_at_the_discriminators_32x32_stage_alone():
    def convolutions(discriminator):
        return [(layer.output.shape[1], layer.kernel_size, layer.filters)
                for layer in discriminator.layers if type(layer).__name__ == "Conv2D"]

    model, _ = recipe("compact")
    width = model.width
    downsampling = [(16, (4, 4), 2 * width), (8, (4, 4), 4 * width), (4, (4, 4), 8 * width)]
    assert convolutions(build_discriminator(model)) == [(32, (3, 3), width), *downsampling]
    model, _ = recipe("compact", model__d_top_convs=2)
    discriminator = build_discriminator(model)
    assert convolutions(discriminator) == [(32, (3, 3), width)] * 3 + downsampling
    assert discriminator.output.shape[1:] == (1,)


def test_d_blur_low_passes_before_each_strided_convolution_and_adds_no_weights():
    def kinds(discriminator):
        return [type(layer).__name__ for layer in discriminator.layers
                if type(layer).__name__ in ("Blur", "Conv2D")]

    model, _ = recipe("compact")
    plain = build_discriminator(model)
    model, _ = recipe("compact", model__d_blur=True)
    blurred = build_discriminator(model)
    assert kinds(blurred) == ["Conv2D"] + ["Blur", "Conv2D"] * 3
    assert [w.shape for w in blurred.weights] == [w.shape for w in plain.weights]
    # A checkerboard, the finest pattern, is gone inside the edges; a constant passes unchanged.
    checker = np.indices((8, 8)).sum(0) % 2 * 2.0 - 1.0
    images = np.stack([checker, np.full((8, 8), 3.0)], axis=-1)[None].astype("float32")
    out = np.asarray(Blur()(images))[0, 1:-1, 1:-1]
    np.testing.assert_allclose(out[..., 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[..., 1], 3.0, rtol=1e-6)
    # Beyond the edges are zeros: a corner keeps 9/16 of a constant.
    np.testing.assert_allclose(np.asarray(Blur()(images))[0, 0, 0, 1], 3.0 * 9 / 16, rtol=1e-6)


def test_d_local_head_adds_the_mean_of_its_16x16_scores_to_the_logit():
    model, _ = recipe("compact", model__d_local_head=True)
    discriminator = build_discriminator(model)
    [score] = [layer for layer in discriminator.layers
               if type(layer).__name__ == "Conv2D" and layer.filters == 1]
    assert score.output.shape[1:] == (16, 16, 1)
    images = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3)).astype("float32")
    logits = np.asarray(discriminator(images))
    # With the head's scores shifted by a constant c everywhere, every logit moves by c.
    kernel, bias = score.get_weights()
    score.set_weights([kernel, bias + 0.75])
    np.testing.assert_allclose(np.asarray(discriminator(images)), logits + 0.75, atol=1e-5)
    # Each score depends on its location's patch: change the image's top-left 6x6 corner
    # alone, and the top-left score moves while one far from it stays.
    scores = keras.Model(discriminator.input, score.output)
    changed = images.copy()
    changed[:, :6, :6] = 0.0
    before, after = np.asarray(scores(images)), np.asarray(scores(changed))
    assert np.all(np.abs(after[:, 0, 0] - before[:, 0, 0]) > 0)
    np.testing.assert_array_equal(after[:, 8:, 8:], before[:, 8:, 8:])
    assert discriminator.output.shape[1:] == (1,)


@pytest.mark.parametrize("architecture", ["compact", "resnet"])
def test_upsample_sets_how_the_generator_upsamples(architecture):
    def upsamplings(generator):
        # The side each upsampling doubles to, with its interpolation.
        return {(layer.output.shape[1], layer.interpolation) for layer in generator.layers
                if isinstance(layer, keras.layers.UpSampling2D)}

    model, _ = network(architecture)
    assert upsamplings(build_generator(model)) == {(8, "nearest"), (16, "nearest"),
                                                   (32, "nearest")}
    model, _ = network(architecture, model__upsample="bilinear")
    generator = build_generator(model)
    assert upsamplings(generator) == {(8, "bilinear"), (16, "bilinear"), (32, "bilinear")}
    assert generator.output.shape[1:] == (32, 32, 3)
    model, _ = network(architecture, model__upsample="bilinear_top")
    assert upsamplings(build_generator(model)) == {(8, "nearest"), (16, "nearest"),
                                                   (32, "bilinear")}


def test_pixel_shuffle_moves_four_channel_groups_into_each_2x2_block():
    features = np.random.default_rng(0).standard_normal((2, 3, 5, 8)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(PixelShuffle()(features)),
                                  tf.nn.depth_to_space(features, 2).numpy())


@pytest.mark.parametrize("upsample, sides", [("subpixel", [8, 16, 32]), ("subpixel_top", [32])])
def test_subpixel_upsampling_starts_as_nearest_and_learns_each_pixel_of_a_block(upsample,
                                                                                 sides):
    model, _ = recipe("compact", model__upsample=upsample)
    generator = build_generator(model)
    shuffles = [layer for layer in generator.layers if isinstance(layer, PixelShuffle)]
    assert [layer.output.shape[1] for layer in shuffles] == sides
    assert {layer.output.shape[1] for layer in generator.layers
            if isinstance(layer, keras.layers.UpSampling2D)} == {8, 16, 32} - set(sides)
    assert generator.output.shape[1:] == (32, 32, 3)
    top = keras.Model(generator.input, shuffles[-1].output)
    latents = np.random.default_rng(0).standard_normal(
        (2, generator.input_shape[1])).astype(np.float32)
    # Every pixel of a 2x2 block starts with the same kernel, as nearest-neighbour upsampling
    # of one convolution; the kernels are then free, and a change to one moves its pixel alone.
    blocks = np.asarray(top(latents, training=False))
    np.testing.assert_array_equal(blocks[:, 1::2, 1::2], blocks[:, ::2, ::2])
    np.testing.assert_array_equal(blocks[:, ::2, 1::2], blocks[:, ::2, ::2])
    assert np.abs(blocks[:, ::2, ::2]).max() > 0
    [convolution] = [layer for layer in generator.layers
                     if layer.output is shuffles[-1].input]
    assert isinstance(convolution, keras.layers.Conv2D)
    [kernel] = convolution.get_weights()
    channels = kernel.shape[-1] // 4
    kernel[..., 3 * channels:] *= 2.0  # the lower right pixel of each block
    convolution.set_weights([kernel])
    changed = np.asarray(top(latents, training=False))
    np.testing.assert_array_equal(changed[:, ::2], blocks[:, ::2])
    np.testing.assert_array_equal(changed[:, 1::2, ::2], blocks[:, 1::2, ::2])
    np.testing.assert_allclose(changed[:, 1::2, 1::2], 2.0 * blocks[:, 1::2, 1::2], rtol=1e-5)


def test_subpixel_generator_trains_and_the_sample_stage_reloads_it(tmp_path):
    model, train = recipe("compact", model__upsample="subpixel", train__iterations=3)
    train_save_and_reload(model, train, tmp_path)


@pytest.mark.parametrize("skip", [False, True], ids=["plain", "skip"])
def test_linear_output_is_the_last_convolution_unbounded(skip):
    model, _ = recipe("compact", model__g_output="linear", model__g_skip=skip)
    generator = build_generator(model)
    [last] = [layer for layer in generator.layers
              if isinstance(layer, keras.layers.Conv2D) and layer.kernel_size == (3, 3)
              and layer.filters == 3]
    latents = np.random.default_rng(0).standard_normal(
        (4, generator.input_shape[1])).astype(np.float32)
    before = np.asarray(generator(latents, training=False))
    kernel, bias = last.get_weights()
    last.set_weights([kernel, bias + 3.0])
    # No tanh after the convolution: a shift of its bias shifts every pixel by as much, past
    # the pixel range; the images are clipped only when they become uint8.
    after = np.asarray(generator(latents, training=False))
    np.testing.assert_allclose(after, before + 3.0, atol=1e-5)
    assert after.min() > 1.0
    assert np.array_equal(pixels.to_uint8(after, "symmetric"), np.full(after.shape, 255))


def test_hard_tanh_output_is_the_linear_output_clipped_to_the_range():
    linear = build_generator(recipe("compact", model__g_output="linear")[0])
    clipped = build_generator(recipe("compact", model__g_output="hard_tanh")[0])
    latents = np.random.default_rng(0).standard_normal(
        (4, linear.input_shape[1])).astype(np.float32)
    # Shift the last bias so that each channel's median lands on 1, whatever the random
    # initialisation: values on both sides of the range's end.
    weights = linear.get_weights()
    weights[-1] = weights[-1] + 1.0 - np.median(linear(latents, training=False), axis=(0, 1, 2))
    linear.set_weights(weights)
    clipped.set_weights(weights)
    free = np.asarray(linear(latents, training=False))
    assert 0.4 < np.mean(free > 1.0) < 0.6
    np.testing.assert_allclose(np.asarray(clipped(latents, training=False)),
                               np.clip(free, -1.0, 1.0), atol=1e-6)


def test_noise_inputs_feed_each_upsampled_stage_a_noise_map_from_the_input_vector():
    model, _ = recipe("compact", model__noise_inputs=True)
    generator = build_generator(model)
    assert generator.input_shape == (None, model.latent_dim + 8 * 8 + 16 * 16 + 32 * 32)
    assert generator_input_size(model) == generator.input_shape[1]
    noise_layers = [layer for layer in generator.layers if isinstance(layer, NoiseInput)]
    assert [layer.output.shape[1:3] for layer in noise_layers] == [(8, 8), (16, 16), (32, 32)]
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((4, generator.input_shape[1])).astype(np.float32)
    renoised = inputs.copy()
    renoised[:, model.latent_dim:] = rng.standard_normal(renoised[:, model.latent_dim:].shape)
    # Scales start at zero: the noise has no effect until training gives it one.
    assert np.array_equal(generator(inputs), generator(renoised))
    for layer in noise_layers:
        layer.scale.assign(np.ones(layer.scale.shape, np.float32))
    assert not np.allclose(generator(inputs), generator(renoised))
    # Pixel (y, x) of the 32x32 map moves the image near (y, x) only.
    moved = inputs.copy()
    moved[:, -32 * 32 + 5 * 32 + 7] += 10.0
    change = np.abs(np.asarray(generator(moved)) - np.asarray(generator(inputs))).sum(axis=3)
    changed = np.argwhere(change.max(axis=0) > 0)
    assert changed.min(axis=0).tolist() == [4, 6] and changed.max(axis=0).tolist() == [6, 8]
    off, _ = recipe("compact")
    assert build_generator(off).input_shape == (None, off.latent_dim)
    assert generator_input_size(off) == off.latent_dim


def test_noise_input_scales_train_and_the_generator_samples_after_saving(tmp_path):
    from dcgan.sampling import draw_samples

    model, train = recipe("compact", model__noise_inputs=True, train__iterations=3)
    result, generator = train_save_and_reload(model, train, tmp_path)
    scales = [layer.scale.numpy() for layer in result.gan.generator.layers
              if isinstance(layer, NoiseInput)]
    assert len(scales) == 3 and all(np.any(scale != 0) for scale in scales)
    images, latents = draw_samples(generator, 5, seed=0, batch_size=5, pixel_range="symmetric")
    assert images.shape == (5, 32, 32, 3) and latents.shape == (5, generator_input_size(model))


def test_minibatch_spread_is_taken_within_groups_of_consecutive_images():
    rng = np.random.default_rng(0)
    alike = np.repeat(rng.standard_normal((1, 4, 4, 3)), 4, axis=0)
    varied = rng.standard_normal((4, 4, 4, 3))
    inputs = np.concatenate([alike, varied]).astype(np.float32)
    outputs = np.asarray(MinibatchStddev(4)(inputs))
    assert outputs.shape == (8, 4, 4, 4)
    assert same([outputs[..., :3]], [inputs])
    # One value per group, the per-feature standard deviation over the group, averaged.
    assert np.allclose(outputs[:4, ..., 3], np.sqrt(1e-8))
    assert np.allclose(outputs[4:, ..., 3], np.sqrt(varied.var(axis=0) + 1e-8).mean())
    with pytest.raises(ValueError, match="a batch of 6 images does not split into groups of 4"):
        MinibatchStddev(4)(inputs[:6])


@pytest.mark.parametrize("architecture, group", [("compact", 0), ("compact", 2), ("resnet", 2)],
                         ids=["compact-off", "compact-groups-of-2", "resnet-groups-of-2"])
def test_minibatch_spread_ties_a_discriminator_output_to_its_group_alone(architecture, group):
    model, _ = network(architecture, model__minibatch_std_group=group)
    discriminator = build_discriminator(model)
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    changed = images.copy()
    changed[1] = rng.uniform(-1, 1, (32, 32, 3))
    before, after = np.asarray(discriminator(images)), np.asarray(discriminator(changed))
    assert np.allclose(before[2:], after[2:], atol=1e-6)
    assert np.allclose(before[0], after[0], atol=1e-6) == (group == 0)


@pytest.mark.parametrize("overrides", [{"model__spectral_norm": True},
                                       {"model__minibatch_std_group": 2}],
                         ids=["spectral-norm", "minibatch-spread"])
def test_compact_discriminator_saves_and_loads_whole(tmp_path, overrides):
    import keras

    model, train = recipe("compact", **overrides)
    discriminator = build_discriminator(model)
    images = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    discriminator(images, training=True)  # one power iteration moves the singular vectors
    discriminator.save(tmp_path / "discriminator.keras")
    loaded = keras.saving.load_model(tmp_path / "discriminator.keras", safe_mode=True)
    assert len(loaded.weights) == len(discriminator.weights)
    assert same([w.numpy() for w in loaded.weights], [w.numpy() for w in discriminator.weights])
    assert np.allclose(loaded(images), discriminator(images), atol=1e-6)


@pytest.mark.parametrize("spectral_norm", [False, True], ids=["plain", "spectral-norm"])
def test_residual_networks_save_and_load_whole(tmp_path, spectral_norm):
    import keras

    model, _ = network("resnet", model__spectral_norm=spectral_norm)
    generator, discriminator = build_generator(model), build_discriminator(model)
    latents = np.random.default_rng(0).standard_normal((4, model.latent_dim)).astype(np.float32)
    # Training-mode calls move the batch-norm statistics and the singular vectors, so that
    # the saved files must carry them.
    images = generator(latents, training=True)
    discriminator(images, training=True)
    for network_model, inputs in ((generator, latents), (discriminator, images)):
        path = tmp_path / f"{network_model.name}.keras"
        network_model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        assert len(loaded.weights) == len(network_model.weights)
        assert same([w.numpy() for w in loaded.weights],
                    [w.numpy() for w in network_model.weights])
        assert np.allclose(loaded(inputs), network_model(inputs), atol=1e-6)


def test_snapshots_refresh_from_fewer_batches_than_the_saved_generator(tmp_path, monkeypatch):
    from dcgan import train_outputs

    monkeypatch.setattr(training, "SNAPSHOT_BN_BATCHES", 1)
    caps = []
    refresh = GAN.refresh_sampler_statistics

    def recording(gan, most=None):
        caps.append(most)
        refresh(gan, most)

    monkeypatch.setattr(GAN, "refresh_sampler_statistics", recording)
    model, train = recipe("compact", train__iterations=4, train__snapshot_every=2,
                          train__ema_bn_batches=3)
    result = training.fit(random_images(), model, train, tmp_path / "checkpoints", "d")
    assert caps == [1, 1]
    train_outputs.save_outputs(result, tmp_path / "models")
    assert caps == [1, 1, None]


def test_residual_run_trains_saves_and_loads_for_sampling(tmp_path):
    model, train = network("resnet", train__iterations=3, train__ema_bn_batches=2)
    result, _ = train_save_and_reload(model, train, tmp_path)
    assert [row["step"] for row in result.log_rows] == [1, 2, 3]
