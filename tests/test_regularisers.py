"""The discriminator's regularisers and the average's standing statistics, each by its formula.

Each regulariser is checked by the gradients the step hands its optimizer: the test computes
the gradient of the adversarial loss plus the regulariser as the paper writes it, with tapes
of its own on the same batch, and the step must apply exactly that.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dcgan.augment import NOISE_DIM
from dcgan.dataset import STREAMS, make_dataset
from dcgan.engine import resolve_engine
from dcgan.gan import GAN
from dcgan.models import build_generator
from dcgan.params import parse_section
from tiny import random_images, recipe, tiny_params


def build(architecture="compact", model_overrides=None, **train_overrides):
    # The compact recipe: its discriminator has no dropout, so a forward pass here sees the
    # same function the step sees. Its own regularisers (LeCam, lazy R1) are off unless a test
    # turns them on, so that each test sees one regulariser alone.
    train_overrides = {"lecam_weight": 0.0, "r1_gamma": 0.0, "r1_every": 1, **train_overrides}
    model, train = recipe("compact", model__architecture=architecture,
                          **{f"model__{k}": v for k, v in (model_overrides or {}).items()},
                          **{f"train__{k}": v for k, v in train_overrides.items()})
    return GAN(model, train, resolve_engine(train)), model, train


def white_images(count=64):
    # An untrained discriminator already scores these well apart from the generator's grey,
    # so that the mean logits on reals and on fakes cannot be mistaken for each other.
    return np.full((count, 32, 32, 3), 255, np.uint8)


def first_batch(model, train, images=None):
    images = random_images() if images is None else images
    return next(iter(make_dataset(images, train, model.latent_dim, 0)))


def recorded_step(optimizer, step):
    """Runs step(); returns what it returned and the gradients it handed `optimizer`."""
    applied = []
    apply = optimizer.apply

    def record(gradients, variables):
        applied.extend(np.asarray(gradient) for gradient in gradients)
        return apply(gradients, variables)

    optimizer.apply = record
    try:
        result = step()
    finally:
        del optimizer.apply
    return result, applied


def applied_gradients(gan, batch):
    """Runs one discriminator step; returns the gradients it handed the optimizer."""
    return recorded_step(gan.d_optimizer, lambda: gan.discriminator_step(batch))[1]


def applied_gradients_then_undo(gan, batch):
    """applied_gradients, with the discriminator's weights put back after the step, so that
    the next step starts where this one did."""
    state = [w.numpy() for w in gan.discriminator.weights]
    try:
        return applied_gradients(gan, batch)
    finally:
        for weight, value in zip(gan.discriminator.weights, state):
            weight.assign(value)


def views(gan, batch, real_noise="aug_real", fake_noise="aug_fake_d"):
    """The step's generated and real images, augmented by the named noise streams."""
    fake = gan.generator(batch["z_d"], training=True)
    return gan._augment(fake, batch[fake_noise]), gan._augment(batch["real"], batch[real_noise])


def expected_gradients(gan, batch, regulariser):
    """Gradients of the adversarial loss plus `regulariser(fake_images, real_images)`."""
    fake, real = views(gan, batch)
    discriminator, size = gan.discriminator, gan.train_params.batch_size
    with tf.GradientTape() as tape:
        loss = gan.loss.d_sum(discriminator(real, training=True),
                              discriminator(fake, training=True),
                              batch["noise_real"], batch["noise_fake"]) / size
        loss += regulariser(fake, real)
    return [np.asarray(g) for g in tape.gradient(loss, discriminator.trainable_variables)]


def assert_same_gradients(applied, expected):
    assert len(applied) == len(expected)
    for index, (found, wanted) in enumerate(zip(applied, expected)):
        np.testing.assert_allclose(found, wanted, rtol=1e-4,
                                   atol=1e-5 * np.abs(wanted).max(), err_msg=f"variable {index}")


def assert_regulariser_matters(gan, batch, regulariser):
    # So that the comparison above could fail: the regulariser moves the gradients by far more
    # than the tolerance.
    plain = expected_gradients(gan, batch, lambda fake, real: 0.0)
    full = expected_gradients(gan, batch, regulariser)
    change = np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(full, plain)))
    size = np.sqrt(sum(np.sum(a ** 2) for a in plain))
    assert change > 0.05 * size


def patch_loss_gan():
    # The local head with its scores judged one by one: the discriminator's outputs are its
    # head's logit, then one logit per location of its 16x16 features.
    gan, model, train = build(model_overrides={"d_local_head": True, "d_local_loss": "patches"})
    assert gan.discriminator.output.shape[1:] == (1 + 16 * 16,)
    return gan, model, train


def test_patch_loss_judges_each_local_score_on_its_own():
    gan, model, train = patch_loss_gan()
    batch = first_batch(model, train)
    fake, real = views(gan, batch)
    discriminator, size = gan.discriminator, train.batch_size

    def d_loss(merge):
        with tf.GradientTape() as tape:
            real_out = discriminator(real, training=True)
            fake_out = discriminator(fake, training=True)
            loss = merge(real_out, fake_out) / size
        return loss, [np.asarray(g) for g in tape.gradient(
            loss, discriminator.trainable_variables)]

    def per_patch(real_out, fake_out):
        # PatchGAN's loss: every 16x16 location's logit against its image's label, the
        # patches' mean beside the head's.
        return (gan.loss.d_sum(real_out[:, :1], fake_out[:, :1], batch["noise_real"],
                               batch["noise_fake"])
                + gan.loss.d_sum(real_out[:, 1:], fake_out[:, 1:],
                                 tf.broadcast_to(batch["noise_real"], real_out[:, 1:].shape),
                                 tf.broadcast_to(batch["noise_fake"], fake_out[:, 1:].shape))
                / 256)

    def averaged(real_out, fake_out):
        # model.d_local_loss mean's loss: the patches' mean joins the logit first.
        return gan.loss.d_sum(
            real_out[:, :1] + tf.reduce_mean(real_out[:, 1:], axis=1, keepdims=True),
            fake_out[:, :1] + tf.reduce_mean(fake_out[:, 1:], axis=1, keepdims=True),
            batch["noise_real"], batch["noise_fake"])

    loss, expected = d_loss(per_patch)
    mean_loss, mean_gradients = d_loss(averaged)
    # So that the comparison could fail: averaging first is another loss.
    assert abs(float(loss) - float(mean_loss)) > 1e-3
    step = applied_gradients(gan, batch)
    assert_same_gradients(step, expected)
    assert max(np.abs(a - b).max() for a, b in zip(step, mean_gradients)) > 1e-3


def test_patch_loss_judges_the_generator_on_each_local_score():
    gan, model, train = patch_loss_gan()
    batch = first_batch(model, train)
    fake = gan._augment(gan.generator(batch["z_g"], training=True), batch["aug_fake_g"])
    outputs = gan.discriminator(fake, training=True)
    expected = (gan.loss.g_sum(outputs[:, :1])
                + gan.loss.g_sum(outputs[:, 1:]) / 256) / train.batch_size
    averaged = gan.loss.g_sum(outputs[:, :1] + tf.reduce_mean(outputs[:, 1:], axis=1,
                                                               keepdims=True)) / train.batch_size
    assert abs(float(expected) - float(averaged)) > 1e-3
    np.testing.assert_allclose(float(gan.generator_step(batch)["g_loss"]), float(expected),
                               rtol=1e-5)


@pytest.mark.parametrize("loss, progress, share", [
    ("nonsaturating", 0.0, 1.0), ("nonsaturating", 0.5, 0.75), ("nonsaturating", 1.0, 0.5),
    ("hinge", 1.0, 0.5), ("book", 1.0, 0.5)])
def test_top_k_trains_the_generator_on_the_fakes_the_discriminator_finds_most_real(
        loss, progress, share):
    # train.g_top_k 0.5: every fake on the first step, the most real half on the last, a line
    # between. The book's loss labels reals 0, so its most real fakes have the lowest logits.
    gan, model, train = build(g_top_k=0.5, loss=loss, label_noise=0.0, iterations=11,
                              late_share=0.0, late_batch_size=0)
    gan.step_counter.assign(round(progress * (train.iterations - 1)))
    batch = first_batch(model, train)
    realness = 1.0 if gan.loss.real_is_positive else -1.0
    count = round(share * train.batch_size)
    with tf.GradientTape(persistent=True) as tape:
        fake = gan._augment(gan.generator(batch["z_g"], training=True), batch["aug_fake_g"])
        logits = gan.discriminator(fake, training=True)
        order = np.argsort(-realness * logits.numpy()[:, 0], kind="stable")
        top = gan.loss.g_sum(tf.gather(logits, order[:count])) / count
        every = gan.loss.g_sum(logits) / train.batch_size
    variables = gan.generator.trainable_variables
    expected = [np.asarray(g) for g in tape.gradient(top, variables)]
    all_fakes = [np.asarray(g) for g in tape.gradient(every, variables)]
    if count < train.batch_size:  # so that the comparison could fail
        assert max(np.abs(a - b).max() for a, b in zip(expected, all_fakes)) > 1e-4
    metrics, applied = recorded_step(gan.g_optimizer, lambda: gan.generator_step(batch))
    np.testing.assert_allclose(float(metrics["g_loss"]), float(top), rtol=1e-5)
    assert_same_gradients(applied, expected)


def input_gradients(gan, images):
    """The gradient of the discriminator's logits with respect to `images`."""
    with tf.GradientTape() as tape:
        tape.watch(images)
        logits = gan.discriminator(images, training=True)
    return tape.gradient(logits, images)


def r1_penalty(gan, weight):
    """Mescheder et al. 2018's R1, weight / 2 times the mean over reals of |grad_x D(x)|^2."""
    def r1(fake, real):
        gradients = input_gradients(gan, real)
        return weight / 2 * tf.reduce_mean(tf.reduce_sum(tf.square(gradients), axis=[1, 2, 3]))
    return r1


def r2_penalty(gan, weight):
    """R3GAN's R2: R1's penalty on the fakes the discriminator saw."""
    r1 = r1_penalty(gan, weight)
    return lambda fake, real: r1(real, fake)


@pytest.mark.parametrize("key, penalty", [("r1_gamma", r1_penalty), ("r2_gamma", r2_penalty)],
                         ids=["r1_on_augmented_reals", "r2_on_augmented_fakes"])
def test_the_penalty_adds_the_squared_input_gradient(key, penalty):
    gamma = 10.0
    gan, model, train = build(**{key: gamma})
    batch = first_batch(model, train)
    regulariser = penalty(gan, gamma)
    expected = expected_gradients(gan, batch, regulariser)
    assert_regulariser_matters(gan, batch, regulariser)
    assert_same_gradients(applied_gradients(gan, batch), expected)


def weighed_r1_penalty(gan, weight, coarse, fine):
    """R1 with the gradient split in two orthogonal parts, its projection onto images constant
    over 2x2 blocks and the rest, their squared norms weighed `coarse` and `fine`."""
    def r1(fake, real):
        gradients = input_gradients(gan, real)
        count, height, width, channels = gradients.shape
        blocks = tf.reshape(gradients, (count, height // 2, 2, width // 2, 2, channels))
        projected = tf.broadcast_to(tf.reduce_mean(blocks, axis=[2, 4], keepdims=True),
                                    blocks.shape)
        squares = (coarse * tf.reduce_sum(tf.square(projected))
                   + fine * tf.reduce_sum(tf.square(blocks - projected)))
        return weight / 2 * squares / count
    return r1


@pytest.mark.parametrize("coarse, fine", [(1.0, 0.0), (0.0, 1.0), (0.5, 3.0)],
                         ids=["coarse_only", "fine_only", "both_weighed"])
def test_r1_weighs_the_gradients_block_means_and_finer_detail_apart(coarse, fine):
    gamma = 10.0
    gan, model, train = build(r1_gamma=gamma, r1_coarse_weight=coarse, r1_fine_weight=fine)
    batch = first_batch(model, train)
    regulariser = weighed_r1_penalty(gan, gamma, coarse, fine)
    expected = expected_gradients(gan, batch, regulariser)
    assert_regulariser_matters(gan, batch, regulariser)
    # Each part's weight moves the gradients far enough that plain R1 would fail here.
    plain = expected_gradients(gan, batch, r1_penalty(gan, gamma))
    assert max(np.abs(a - b).max() / np.abs(b).max() for a, b in zip(plain, expected)) > 1e-2
    assert_same_gradients(applied_gradients(gan, batch), expected)


def test_r1_and_r2_together_add_up_on_r1s_lazy_steps():
    r1_gamma, r2_gamma, every = 10.0, 4.0, 2
    gan, model, train = build(r1_gamma=r1_gamma, r2_gamma=r2_gamma, r1_every=every)
    batch = first_batch(model, train)
    r1, r2 = r1_penalty(gan, every * r1_gamma), r2_penalty(gan, every * r2_gamma)
    both = expected_gradients(gan, batch, lambda fake, real: r1(fake, real) + r2(fake, real))
    plain = expected_gradients(gan, batch, lambda fake, real: 0.0)
    assert_regulariser_matters(gan, batch, r2)
    for counter, expected in [(0, both), (1, plain), (2, both)]:
        gan.step_counter.assign(counter)
        assert_same_gradients(applied_gradients_then_undo(gan, batch), expected)


def test_lazy_r1_applies_every_kth_step_times_k():
    # StyleGAN2's lazy R1: on the 1st, 4th, 7th... step three times the penalty, on the others
    # none, so that over a run the discriminator gets the same penalty at a third of its cost.
    gamma, every = 10.0, 3
    gan, model, train = build(r1_gamma=gamma, r1_every=every)
    batch = first_batch(model, train)
    r1 = r1_penalty(gan, every * gamma)
    lazy = expected_gradients(gan, batch, r1)
    plain = expected_gradients(gan, batch, lambda fake, real: 0.0)
    assert_regulariser_matters(gan, batch, r1)
    for counter, expected in [(0, lazy), (1, plain), (2, plain), (3, lazy), (7, plain)]:
        gan.step_counter.assign(counter)
        assert_same_gradients(applied_gradients_then_undo(gan, batch), expected)


def test_r1_weight_grows_along_a_line_from_the_first_step_to_the_last():
    # train.r1_gamma_growth 3 over the tiny run's 6 steps: gamma on step 0, three times gamma on
    # step 5, and on step 2 two fifths of the way between.
    gamma, growth = 10.0, 3.0
    gan, model, train = build(r1_gamma=gamma, r1_gamma_growth=growth)
    assert train.iterations == 6
    batch = first_batch(model, train)
    assert_regulariser_matters(gan, batch, r1_penalty(gan, gamma))
    for counter, weight in [(0, gamma), (5, growth * gamma), (2, gamma * (1 + 2 * 2 / 5))]:
        gan.step_counter.assign(counter)
        expected = expected_gradients(gan, batch, r1_penalty(gan, weight))
        assert_same_gradients(applied_gradients_then_undo(gan, batch), expected)


@pytest.mark.parametrize("jit_compile", ["off", "on"])
def test_lazy_r1_skips_the_penalty_in_the_compiled_step(jit_compile):
    # The whole step as training runs it, with XLA too. Each step runs twice from the same
    # state on the same batch, once as lazy R1 picks it and once told to skip the penalty: the
    # networks match after the step that skips it and part after the one that applies it.
    gan, model, train = build(r1_gamma=10.0, r1_every=2, jit_compile=jit_compile)
    variables = [v for part in gan.state().values() for v in part]
    images = random_images()

    def step(counter, start):
        for variable, value in zip(variables, start):
            variable.assign(value)
        gan.step_counter.assign(counter)
        gan.step_fn(iter(make_dataset(images, train, model.latent_dim, counter)))
        return [w.numpy() for w in gan.discriminator.weights]

    same = []
    for counter in (1, 2):
        start = [v.numpy() for v in variables]
        lazy = step(counter, start)
        gan.r1_due = lambda: False  # the step told to skip the penalty
        skipped = step(counter, start)
        del gan.r1_due
        same.append(all(np.array_equal(a, b) for a, b in zip(lazy, skipped)))
    assert same == [True, False]


def signed_logits(gan, batch, sign):
    fake, real = views(gan, batch)
    return (sign * np.asarray(gan.discriminator(real, training=True)).ravel(),
            sign * np.asarray(gan.discriminator(fake, training=True)).ravel())


# The sign that makes higher mean "real": the book labels reals 0, so its real logits are low.
@pytest.mark.parametrize("loss, sign", [("nonsaturating", 1.0), ("book", -1.0)])
def test_lecam_penalty_and_anchors_follow_the_papers_formula(loss, sign):
    weight = 5.0
    # Without the minibatch spread, whose extra input narrows the untrained network's gap
    # between white reals and grey fakes, and without self-modulation, whose untrained scales
    # make the fakes less grey; the penalty does not depend on the networks.
    gan, model, train = build(model_overrides={"minibatch_std_group": 0,
                                               "g_self_modulation": 0},
                              lecam_weight=weight, loss=loss)
    batch = first_batch(model, train, white_images())
    assert np.array_equal(gan.lecam_anchors.numpy(), [0.0, 0.0])
    real, fake = signed_logits(gan, batch, sign)
    assert abs(real.mean() - fake.mean()) > 0.05, "reals and fakes should score apart"
    # Anchors among the logits, so that each hinge is active for some images and not others.
    anchors = np.array([np.median(fake), np.median(real)], np.float32)
    gan.lecam_anchors.assign(anchors)

    def lecam(fake_images, real_images):
        # Tseng et al. 2021: reals above the fakes' anchor and fakes below the reals' anchor
        # are pulled back, each term a mean over its images.
        real_logits = sign * gan.discriminator(real_images, training=True)
        fake_logits = sign * gan.discriminator(fake_images, training=True)
        real_anchor, fake_anchor = anchors
        return weight * (tf.reduce_mean(tf.square(tf.nn.relu(real_logits - fake_anchor)))
                         + tf.reduce_mean(tf.square(tf.nn.relu(real_anchor - fake_logits))))

    expected = expected_gradients(gan, batch, lecam)
    assert_regulariser_matters(gan, batch, lecam)
    assert_same_gradients(applied_gradients(gan, batch), expected)
    # The anchors, zero at first, then move 1 % of the way to this step's mean logits,
    # measured before the update and signed as above.
    np.testing.assert_allclose(gan.lecam_anchors.numpy(),
                               0.99 * anchors + 0.01 * np.array([real.mean(), fake.mean()]),
                               rtol=1e-5, atol=1e-7)


def test_consistency_penalises_the_change_under_a_second_augmentation():
    weight = 10.0
    gan, model, train = build(consistency_weight=weight)
    batch = first_batch(model, train)

    def consistency(fake, real):
        # bCR (Zhao et al. 2021): the squared change of the logit when the same image is
        # augmented by the second noise, a mean over reals plus a mean over fakes.
        other_fake, other_real = views(gan, batch, "aug_real_2", "aug_fake_2")
        discriminator = gan.discriminator
        return weight * (
            tf.reduce_mean(tf.square(discriminator(other_real, training=True)
                                     - discriminator(real, training=True)))
            + tf.reduce_mean(tf.square(discriminator(other_fake, training=True)
                                       - discriminator(fake, training=True))))

    expected = expected_gradients(gan, batch, consistency)
    assert_regulariser_matters(gan, batch, consistency)
    assert_same_gradients(applied_gradients(gan, batch), expected)


def test_consistency_adds_two_noise_streams_and_leaves_the_others_as_they_were():
    images = random_images()
    params = tiny_params("compact")
    plain = parse_section("train", params["train"])
    bcr = parse_section("train", {**params["train"], "consistency_weight": 1.0})
    for step, (without, with_bcr) in enumerate(zip(make_dataset(images, plain, 8, 0),
                                                   make_dataset(images, bcr, 8, 0))):
        assert set(with_bcr) == set(without) | {"aug_real_2", "aug_fake_2"}
        for name in ("real", *STREAMS):
            assert np.array_equal(without[name], with_bcr[name]), f"step {step}: {name}"
        for name in ("aug_real_2", "aug_fake_2"):
            assert with_bcr[name].shape == (plain.batch_size_at(step), NOISE_DIM)
        # The second views' noise is drawn afresh, not copied from another stream.
        noises = [np.asarray(with_bcr[name]) for name in (
            "aug_real", "aug_fake_d", "aug_fake_g", "aug_real_2", "aug_fake_2")]
        assert len({noise.tobytes() for noise in noises}) == len(noises)


def batch_norms(generator):
    return [layer for layer in generator.layers
            if isinstance(layer, keras.layers.BatchNormalization)]


def standing_statistics(generator, latents):
    """Per batch-norm layer, the mean over batches of its inputs' batch means and variances."""
    norms = batch_norms(generator)
    inputs = keras.Model(generator.input, [layer.input for layer in norms])
    means = [[] for _ in norms]
    variances = [[] for _ in norms]
    for batch in latents:
        for index, values in enumerate(inputs(batch, training=True)):
            values = np.asarray(values, np.float64)
            means[index].append(values.mean(axis=(0, 1, 2)))
            variances[index].append(values.var(axis=(0, 1, 2)))
    return [(np.mean(m, axis=0), np.mean(v, axis=0)) for m, v in zip(means, variances)]


def move_the_average(gan):
    # As training would, so that the average's weights are its own, not the generator's.
    rng = np.random.default_rng(1)
    for variable in gan.ema_generator.trainable_variables:
        variable.assign(variable.numpy() * (1 + 0.5 * rng.standard_normal(variable.shape)))


@pytest.mark.parametrize("architecture, most, used",
                         [("compact", None, 3), ("resnet", None, 3), ("compact", 2, 2),
                          ("compact", 5, 3)])
def test_refreshed_statistics_of_the_average_are_its_own_batch_statistics(architecture, most,
                                                                          used):
    # `most` caps the batches (snapshots use a cheaper estimate), never raises them.
    gan, model, train = build(architecture, ema=0.9, ema_bn_batches=3)
    move_the_average(gan)
    # The expected statistics come from a copy of the average, whose own running statistics
    # the forward passes below would otherwise move.
    copy = build_generator(model)
    copy.set_weights(gan.ema_generator.get_weights())
    rng = np.random.default_rng([train.seed, 2])
    latents = [rng.standard_normal((train.last_batch_size, model.latent_dim)).astype(np.float32)
               for _ in range(used)]
    expected = standing_statistics(copy, latents)
    norms = batch_norms(gan.ema_generator)
    momenta = [layer.momentum for layer in norms]
    generator_before = [v.numpy() for v in gan.generator.variables]

    gan.refresh_sampler_statistics(most)
    assert len(norms) == len(expected) > 0
    for layer, (mean, variance) in zip(norms, expected):
        np.testing.assert_allclose(layer.moving_mean.numpy(), mean, rtol=1e-4, atol=1e-6,
                                   err_msg=layer.name)
        np.testing.assert_allclose(layer.moving_variance.numpy(), variance, rtol=1e-4,
                                   atol=1e-6, err_msg=layer.name)
    assert [layer.momentum for layer in norms] == momenta, "the momenta must be restored"
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(generator_before,
                                                              gan.generator.variables))


def test_no_refresh_batches_leave_the_average_as_it_is():
    gan, _, _ = build(ema=0.9, ema_bn_batches=0)
    move_the_average(gan)
    before = [v.numpy() for v in gan.ema_generator.variables]
    gan.refresh_sampler_statistics()
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before,
                                                              gan.ema_generator.variables))
