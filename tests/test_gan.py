"""The GAN's training step: each network learns what it should, the average follows."""

import numpy as np
import pytest
import tensorflow as tf

from dcgan.augment import GATED_POLICIES, GATES, NOISE_DIM, diff_augment
from dcgan.dataset import make_dataset
from dcgan.engine import resolve_engine
from dcgan.gan import ADA_INTERVAL, GAN, make_optimizer
from dcgan.optimizers import Keras2RMSprop
from dcgan.params import AUGMENT_POLICIES
from tiny import recipe


def build(name="chollet", **overrides):
    model, train = recipe(name, **overrides)
    return GAN(model, train, resolve_engine(train)), model, train


def white_images(count=64):
    # Real images all white, while an untrained generator paints grey: trivially separable.
    return np.full((count, 32, 32, 3), 255, np.uint8)


def batches(gan, model, train, images):
    return iter(make_dataset(images, train, model.latent_dim, 0))


def real_side(gan, logits):
    """Which logits the discriminator means as 'real' (the book labels reals 0)."""
    logits = np.asarray(logits).ravel()
    return logits > 0 if gan.loss.real_is_positive else logits < 0


@pytest.mark.parametrize("name", ["chollet", "compact"])
def test_the_discriminator_learns_to_tell_reals_from_fakes(name):
    gan, model, train = build(name, train__iterations=40)
    data = batches(gan, model, train, white_images())
    for _ in range(40):
        batch = next(data)
        metrics = gan.discriminator_step(batch)
    # The fakes the step draws: the generator in training mode, on its batch's statistics. In
    # inference mode an untrained generator's batch norms use their initial statistics and
    # paint images the discriminator never saw.
    fakes = gan.generator(batch["z_d"], training=True)
    # Judged directly, not through the step's own bookkeeping: reals on the real side and
    # fakes on the fake side, so a step that swapped them would fail here.
    assert real_side(gan, gan.discriminator(batch["real"], training=False)).mean() >= 0.9
    assert (~real_side(gan, gan.discriminator(fakes, training=False))).mean() >= 0.9
    # And the accuracies the step logs, measured before its update and with dropout on, say
    # the same, each under its own name.
    assert float(metrics["d_real_accuracy"]) >= 0.75
    assert float(metrics["d_fake_accuracy"]) >= 0.75


@pytest.mark.parametrize("name", ["chollet", "compact"])
def test_a_generator_step_lowers_its_loss_against_the_frozen_discriminator(name):
    gan, model, train = build(name)
    batch = next(batches(gan, model, train, white_images()))

    def generator_loss():
        fakes = gan.generator(batch["z_g"], training=True)
        logits = gan.discriminator(gan._augment(fakes, batch["aug_fake_g"]), training=False)
        return float(gan.loss.g_sum(logits)) / train.batch_size

    discriminator = [w.numpy() for w in gan.discriminator.weights]
    before = generator_loss()
    for _ in range(3):
        gan.generator_step(batch)
    assert generator_loss() < before
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(discriminator,
                                                              gan.discriminator.weights))


def test_the_relativistic_generator_step_pairs_each_fake_with_a_real():
    gan, model, train = build("compact", train__loss="relativistic", train__label_noise=0.0)
    batch = next(batches(gan, model, train, white_images()))

    def expected(batch):
        # softplus(D(real_i) - D(fake_i)), each image augmented as the step augments it.
        fakes = gan._augment(gan.generator(batch["z_g"], training=True), batch["aug_fake_g"])
        reals = gan._augment(batch["real"], batch["aug_real"])
        logits = gan.discriminator(tf.concat([fakes, reals], 0), training=True).numpy().ravel()
        return np.log1p(np.exp(logits[train.batch_size:] - logits[:train.batch_size])).mean()

    # Each expected loss is computed before the step that updates the generator.
    loss = expected(batch)
    assert float(gan.generator_step(batch)["g_loss"]) == pytest.approx(loss, rel=1e-5)
    # Other reals beside the same fakes give another loss, which the step reports.
    other = dict(batch, real=-batch["real"])
    loss, other_loss = expected(batch), expected(other)
    assert abs(other_loss - loss) > 1e-3
    assert float(gan.generator_step(other)["g_loss"]) == pytest.approx(other_loss, rel=1e-5)


def test_relativistic_accuracy_is_the_fraction_of_pairs_ranked_right_whatever_the_offset():
    gan, model, train = build("compact", train__loss="relativistic", train__label_noise=0.0)
    batch = next(batches(gan, model, train, white_images()))
    # The pairing loss cannot see a constant added to every logit; nor should its accuracy.
    last = [layer for layer in gan.discriminator.layers
            if getattr(layer, "bias", None) is not None][-1]
    last.bias.assign(last.bias + 100.0)
    fakes = gan._augment(gan.generator(batch["z_d"], training=True), batch["aug_fake_d"])
    reals = gan._augment(batch["real"], batch["aug_real"])
    logits = gan.discriminator(tf.concat([fakes, reals], 0), training=True).numpy().ravel()
    assert logits.min() > 0
    ranked = np.mean(logits[train.batch_size:] > logits[:train.batch_size])
    metrics = gan.discriminator_step(batch, with_r1=False)
    assert float(metrics["d_real_accuracy"]) == pytest.approx(ranked)
    assert float(metrics["d_fake_accuracy"]) == pytest.approx(ranked)


def test_the_moving_average_follows_the_generator_by_its_recursion():
    gan, model, train = build("compact", train__ema=0.9)
    iterator = batches(gan, model, train, white_images())
    average = [v.numpy() for v in gan.ema_generator.variables]
    for step in range(1, 4):
        gan.step_fn(iterator)
        decay = min(0.9, (1 + step) / (10 + step))
        for i, (weight, ema) in enumerate(zip(gan.generator.variables,
                                              gan.ema_generator.variables)):
            if weight.trainable:
                average[i] = decay * average[i] + (1 - decay) * weight.numpy()
            else:
                average[i] = weight.numpy()
            np.testing.assert_allclose(ema.numpy(), average[i], rtol=1e-5, atol=1e-7)
    moved = [not np.array_equal(a, g.numpy()) for a, g in zip(
        average, gan.generator.variables) if g.trainable]
    assert any(moved), "the average should lag behind the generator, not copy it"


def test_optimizers_are_the_ones_named_with_keras_2_decay():
    _, _, train = build("chollet")
    optimizer = make_optimizer(train, 0.0008, loss_scaling=False)
    assert isinstance(optimizer, Keras2RMSprop)
    assert (optimizer.decay, optimizer.epsilon, optimizer.clipvalue) == (1e-8, 1e-8, 1.0)
    _, _, train = build("compact", train__learning_rate_decay=0.5)
    optimizer = make_optimizer(train, 0.001, loss_scaling=False)
    schedule = optimizer._learning_rate
    assert float(schedule(2)) == pytest.approx(0.001 / (1 + 0.5 * 2))
    assert isinstance(make_optimizer(train, 0.001, loss_scaling=True),
                      tf.keras.optimizers.LossScaleOptimizer)
    _, _, train = build("compact", train__beta_1=0.25, train__beta_2=0.75)
    optimizer = make_optimizer(train, 0.001, loss_scaling=False)
    assert isinstance(optimizer, tf.keras.optimizers.Adam)
    assert (optimizer.beta_1, optimizer.beta_2) == (0.25, 0.75)


@pytest.mark.parametrize("name", ["chollet", "compact"])
def test_the_ramp_down_slows_only_the_runs_last_steps(name):
    # Six steps, the last half ramped: updates 0 to 3 at the full rates (update 3 at 3/3 of
    # them), update 4 at 2/3 and update 5 at 1/3. Every weight of both networks matches a run
    # without the ramp until step 4, and none of the later steps does.
    runs = []
    for share in (0.0, 0.5):
        gan, model, train = build(name, train__learning_rate_ramp_down=share)
        data = batches(gan, model, train, white_images())
        weights = []
        for _ in range(train.iterations):
            gan.step_fn(data)
            weights.append([w.numpy() for w in gan.generator.weights + gan.discriminator.weights])
        runs.append(weights)
    same = [all(np.array_equal(a, b) for a, b in zip(plain, ramped))
            for plain, ramped in zip(*runs)]
    assert same == [True] * 4 + [False] * 2


def test_the_fade_lowers_the_augmentation_chance_only_over_the_runs_last_steps():
    # Six steps, the last half faded: steps 0 to 3 augment every image as a run without the
    # fade does (step 3 at 3/3 of the chance), step 4 at 2/3 and step 5 at 1/3. Every weight of
    # both networks matches the run without the fade until step 4, and none of the later
    # steps does.
    runs, chances = [], []
    for share in (0.0, 0.5):
        gan, model, train = build("compact", train__augment_fade=share)
        data = batches(gan, model, train, white_images())
        weights = []
        for _ in range(train.iterations):
            if share:
                chances.append(float(gan.augment_chance()))
            gan.step_fn(data)
            weights.append([w.numpy() for w in gan.generator.weights + gan.discriminator.weights])
        runs.append(weights)
    np.testing.assert_allclose(chances, [1, 1, 1, 1, 2 / 3, 1 / 3], rtol=1e-6)
    same = [all(np.array_equal(a, b) for a, b in zip(plain, faded))
            for plain, faded in zip(*runs)]
    assert same == [True] * 4 + [False] * 2


def test_a_late_batch_is_scored_as_a_run_of_that_batch_size_scores_it():
    # The losses, accuracies and regularisers are sums over the batch divided by its size: on
    # a late step of 16 images they must be a batch-16 run's, not twice them.
    levers = {"train__lecam_weight": 1.0, "train__r1_gamma": 1.0, "train__r1_every": 1}
    late, model, train = build("compact", train__late_share=0.5, train__late_batch_size=16,
                               **levers)
    large, _, large_train = build("compact", train__batch_size=16, **levers)
    for network in ("generator", "discriminator"):
        for ours, theirs in zip(getattr(late, network).variables,
                                getattr(large, network).variables):
            ours.assign(theirs)
    batch = next(iter(make_dataset(white_images(), large_train, model.latent_dim, 0)))
    assert batch["real"].shape[0] == 16
    ours, theirs = late.discriminator_step(batch), large.discriminator_step(batch)
    for key in ("d_loss", "d_real_accuracy", "d_fake_accuracy"):
        assert float(ours[key]) == float(theirs[key]), key
    assert 0.0 <= float(ours["d_real_accuracy"]) <= 1.0
    np.testing.assert_array_equal(late.lecam_anchors.numpy(), large.lecam_anchors.numpy())
    assert float(late.generator_step(batch)["g_loss"]) == float(
        large.generator_step(batch)["g_loss"])


def test_the_fade_scales_a_fixed_chance():
    gan, model, train = build("compact", train__augment_probability=0.5,
                              train__augment_fade=0.5, train__iterations=8)
    chances = []
    for step in range(train.iterations + 1):
        gan.step_counter.assign(step)
        chances.append(float(gan.augment_chance()))
    np.testing.assert_allclose(chances, [0.5] * 5 + [0.375, 0.25, 0.125, 0.0], rtol=1e-6)


@pytest.mark.parametrize("policies", [(p,) for p in AUGMENT_POLICIES] + [AUGMENT_POLICIES])
def test_every_augmentation_keeps_the_shape_and_stays_in_its_range(policies):
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(-1, 1, (16, 32, 32, 3)), tf.float32)
    noise = tf.constant(rng.random((16, NOISE_DIM)), tf.float32)
    augmented = diff_augment(images, noise, policies, 0.125, 0.5).numpy()
    assert augmented.shape == images.shape and augmented.dtype == np.float32
    assert np.all(np.isfinite(augmented))
    if "color" not in policies:
        # Moving pixels and blanking squares never makes values the image did not have.
        assert set(np.unique(augmented)) <= set(np.unique(images.numpy())) | {0.0}
        assert not np.array_equal(augmented, images.numpy())
    else:
        # DiffAugment's colour: brightness +-0.5, saturation x[0, 2], contrast x[0.5, 1.5].
        # A grey image keeps its saturation and contrast, so only the brightness moves it.
        grey = tf.fill((16, 32, 32, 3), 0.25)
        shifted = diff_augment(grey, noise, ("color",), 0.125, 0.5).numpy() - 0.25
        assert np.all(np.abs(shifted) <= 0.5 + 1e-6)
        np.testing.assert_allclose(shifted[:, 0, 0, 0], noise[:, 0].numpy() - 0.5, atol=1e-6)


def colour_reference(images, noise, strength, saturation=1.0):
    """DiffAugment's colour in numpy, each factor's distance from no change scaled by strength,
    saturation's by strength times `saturation` too; saturation stops at 0 (grey)."""
    def factor(column, centre, spread, scale=strength):
        return (1 + scale * spread * (noise[:, column] - centre)).reshape(-1, 1, 1, 1)
    images = images + strength * (noise[:, 0] - 0.5).reshape(-1, 1, 1, 1)
    mean = images.mean(axis=3, keepdims=True)
    images = (images - mean) * np.maximum(factor(1, 0.5, 2, strength * saturation), 0) + mean
    mean = images.mean(axis=(1, 2, 3), keepdims=True)
    return (images - mean) * factor(2, 0.5, 1) + mean


@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0, 1.5])
def test_colour_strength_scales_brightness_saturation_and_contrast(strength):
    rng = np.random.default_rng(1)
    images = rng.uniform(-1, 1, (16, 8, 8, 3)).astype(np.float32)
    noise = rng.random((16, NOISE_DIM)).astype(np.float32)
    out = diff_augment(tf.constant(images), tf.constant(noise), ("color",), 0.125, 0.5,
                       strength).numpy()
    np.testing.assert_allclose(out, colour_reference(images, noise, strength), atol=2e-6)


@pytest.mark.parametrize("strength, saturation", [(1.0, 0.0), (1.0, 0.5), (1.5, 0.25)])
def test_saturation_share_scales_the_saturation_change_alone(strength, saturation):
    rng = np.random.default_rng(1)
    images = rng.uniform(-1, 1, (16, 8, 8, 3)).astype(np.float32)
    noise = rng.random((16, NOISE_DIM)).astype(np.float32)
    out = diff_augment(tf.constant(images), tf.constant(noise), ("color",), 0.125, 0.5,
                       strength, saturation=saturation).numpy()
    np.testing.assert_allclose(out, colour_reference(images, noise, strength, saturation),
                               atol=2e-6)
    # So that the comparison could fail: the full saturation change gives other images.
    assert np.abs(out - colour_reference(images, noise, strength)).max() > 0.05


def blank_lines(images):
    """Per image, how many rows and how many columns are zero across the whole image."""
    blank = np.all(images == 0, axis=3)
    return blank.all(axis=2).sum(axis=1), blank.all(axis=1).sum(axis=1)


@pytest.mark.parametrize("ratio, shift", [(0.0, 0), (0.125, 2), (0.25, 4), (0.5, 8)])
def test_translation_shifts_by_at_most_its_share_of_the_side(ratio, shift):
    # Noise 0 draws the largest shift up and left, noise near 1 the largest down and right;
    # each leaves that many zero rows and columns on an image with no zeros of its own.
    noise = np.zeros((2, NOISE_DIM), np.float32)
    noise[1, 3:5] = 0.9999
    ones = tf.ones((2, 16, 16, 3))
    rows, cols = blank_lines(diff_augment(ones, tf.constant(noise), ("translation",),
                                          translation=ratio, cutout=0.5).numpy())
    assert list(rows) == [shift, shift] and list(cols) == [shift, shift]


@pytest.mark.parametrize("ratio, side", [(0.25, 4), (0.5, 8), (0.75, 12)])
def test_cutout_blanks_a_square_of_its_share_of_the_side(ratio, side):
    noise = np.full((1, NOISE_DIM), 0.5, np.float32)  # the square in the middle of the image
    out = diff_augment(tf.ones((1, 16, 16, 3)), tf.constant(noise), ("cutout",),
                       translation=0.125, cutout=ratio).numpy()[0]
    blank_rows, blank_cols = np.nonzero(np.all(out == 0, axis=2))
    assert len(blank_rows) == side * side
    assert np.ptp(blank_rows) == side - 1 and np.ptp(blank_cols) == side - 1


def test_the_training_step_augments_with_the_params_strengths():
    gan, _, _ = build("compact", train__augment=["translation", "cutout"],
                      train__augment_translation=0.25, train__augment_cutout=0.0)
    noise = tf.zeros((1, NOISE_DIM))  # the largest shift: a quarter of the 32-pixel side
    rows, cols = blank_lines(gan._augment(tf.ones((1, 32, 32, 3)), noise).numpy())
    assert (rows[0], cols[0]) == (8, 8)
    gan, _, _ = build("compact", train__augment=["color"], train__augment_color=0.0)
    images = tf.random.uniform((4, 32, 32, 3), -1, 1, seed=0)
    noise = tf.random.uniform((4, NOISE_DIM), seed=1)
    np.testing.assert_allclose(gan._augment(images, noise).numpy(), images.numpy(), atol=1e-6)
    # Brightness and contrast at no change and saturation at its greyest: with no share of
    # the saturation change the images stay as they are, where the full change turns them grey.
    gan, _, _ = build("compact", train__augment=["color"], train__augment_saturation=0.0)
    noise = tf.constant([[0.5, 0.0, 0.5] + [0.0] * (NOISE_DIM - 3)] * 4)
    np.testing.assert_allclose(gan._augment(images, noise).numpy(), images.numpy(), atol=1e-6)


def test_each_policy_applies_to_each_image_where_its_gate_is_below_the_probability():
    rng = np.random.default_rng(2)
    images = tf.constant(rng.uniform(-1, 1, (16, 32, 32, 3)), tf.float32)
    noise = rng.random((16, NOISE_DIM + GATES)).astype(np.float32)
    probability = 0.5
    # Every policy, in DiffAugment's order, on the images whose gate for it is below 0.5.
    expected = images.numpy()
    for policy in AUGMENT_POLICIES:
        alone = diff_augment(tf.constant(expected), tf.constant(noise[:, :NOISE_DIM]), (policy,),
                             0.125, 0.5).numpy()
        applies = noise[:, NOISE_DIM + GATED_POLICIES.index(policy)] < probability
        expected = np.where(applies[:, None, None, None], alone, expected)
    gated = diff_augment(images, tf.constant(noise), AUGMENT_POLICIES, 0.125, 0.5,
                         probability=probability).numpy()
    np.testing.assert_array_equal(gated, expected)
    assert not np.array_equal(gated, images.numpy())
    every = diff_augment(images, tf.constant(noise[:, :NOISE_DIM]), AUGMENT_POLICIES, 0.125, 0.5)
    assert not np.array_equal(gated, every.numpy())
    # Chance 1 always applies, as no chance does; chance 0 never does.
    for chance, same_as in ((1.0, every.numpy()), (0.0, images.numpy())):
        out = diff_augment(images, tf.constant(noise), AUGMENT_POLICIES, 0.125, 0.5,
                           probability=chance).numpy()
        np.testing.assert_array_equal(out, same_as)


def force_real_sign(gan, sign):
    """Makes the discriminator output far to one side for every image: +1 above zero."""
    last = gan.discriminator.layers[-1]
    last.bias.assign(np.full(last.bias.shape, 100.0 * sign, np.float32))


# r_t is the mean sign of the outputs on reals, signed so that + means "real": the book labels
# reals 0, so outputs far below zero say "real" there.
@pytest.mark.parametrize("name, loss, real_sign", [
    ("compact", "nonsaturating", 1.0), ("compact", "hinge", 1.0), ("compact", "book", -1.0)])
def test_ada_moves_the_chance_every_fourth_step_toward_its_target(name, loss, real_sign):
    gan, model, train = build(name, train__loss=loss, train__label_noise=0.0,
                              train__augment_probability=0.5, train__augment_target=0.6,
                              train__augment_ramp=320, train__iterations=40)
    data = batches(gan, model, train, white_images())
    step = 4 * train.batch_size / 320  # four steps' reals over the ramp: 0.1
    chances = []
    for direction in (real_sign, -real_sign):
        # Every real called real: r_t = 1 > 0.6, the chance rises; every real called fake:
        # r_t = -1, it falls.
        force_real_sign(gan, direction)
        for _ in range(2 * ADA_INTERVAL):
            gan.discriminator_step(next(data))
            chances.append(float(gan.augment_state[0]))
    assert ADA_INTERVAL == 4
    expected = [0.5] * 3 + [0.5 + step] * 4 + [0.5 + 2 * step] + [0.5 + 2 * step] * 3 + [
        0.5 + step] * 4 + [0.5]
    np.testing.assert_allclose(chances, expected, atol=1e-6)


def test_ada_keeps_the_chance_within_0_and_1():
    gan, model, train = build("compact", train__augment_probability=0.95,
                              train__augment_target=0.6, train__augment_ramp=8,
                              train__iterations=40)
    data = batches(gan, model, train, white_images())
    for sign, bound in ((1.0, 1.0), (-1.0, 0.0)):
        force_real_sign(gan, sign)
        for _ in range(ADA_INTERVAL):
            gan.discriminator_step(next(data))
        assert float(gan.augment_state[0]) == bound


def test_a_fixed_chance_never_moves_and_the_step_augments_with_it():
    gan, model, train = build("compact", train__augment_probability=0.0, train__iterations=40)
    assert not gan.augment_state.trainable
    data = batches(gan, model, train, white_images())
    force_real_sign(gan, 1.0)
    for _ in range(2 * ADA_INTERVAL):
        gan.discriminator_step(next(data))
    assert float(gan.augment_state[0]) == 0.0
    # With chance 0 the step's augmentation leaves every image as it was.
    images = tf.random.uniform((4, 32, 32, 3), -1, 1, seed=0)
    noise = tf.random.uniform((4, NOISE_DIM + GATES), seed=1)
    np.testing.assert_array_equal(gan._augment(images, noise).numpy(), images.numpy())
