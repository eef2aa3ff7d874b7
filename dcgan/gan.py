"""The GAN: both networks, their optimizers, the moving average and the compiled training step."""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import tensorflow as tf

from dcgan.augment import diff_augment
from dcgan.engine import Engine
from dcgan.errors import TrainingError
from dcgan.losses import make_loss
from dcgan.models import build_discriminator, build_generator
from dcgan.optimizers import Keras2RMSprop, RampDown
from dcgan.params import ModelParams, TrainParams
from dcgan.sampling import generate_images

# The decay of LeCam's moving averages of the discriminator's outputs, as in Tseng et al.
LECAM_DECAY = 0.99
# ADA moves its augmentation chance once every this many steps, as Karras et al. 2020 do.
ADA_INTERVAL = 4


@contextlib.contextmanager
def _global_policy(name: str):
    # Layers take the global dtype policy when they are built and keep it, so setting it only
    # while the networks are built leaves nothing behind for the next run in this process.
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def make_optimizer(train_params: TrainParams, learning_rate: float, loss_scaling: bool):
    """The optimizer `train_params.optimizer` names, wrapped for loss scaling under float16.

    keras2_rmsprop is the update the book's Keras 2.0.8 made (see dcgan.optimizers); rmsprop
    is Keras 3's, which moves tiny gradients up to a thousand times less. Keras 2's decay and
    the ramp-down at the end of the run act on all three.
    """
    clip = {"clipvalue": train_params.clipvalue} if train_params.clipvalue > 0 else {}
    decay = train_params.learning_rate_decay
    if train_params.optimizer == "keras2_rmsprop" or decay == 0:
        rate = learning_rate  # Keras2RMSprop applies Keras 2's decay in its own update
    else:
        # Keras 2's decay as a schedule: the rate at step t is rate / (1 + decay * t).
        rate = keras.optimizers.schedules.InverseTimeDecay(learning_rate, 1, decay)
    ramp_steps = ramp_down_steps(train_params)
    if ramp_steps:
        rate = RampDown(rate, train_params.iterations, ramp_steps)
    if train_params.optimizer == "keras2_rmsprop":
        optimizer = Keras2RMSprop(rate, decay=decay, **clip)
    elif train_params.optimizer == "rmsprop":
        optimizer = keras.optimizers.RMSprop(rate, **clip)
    else:
        optimizer = keras.optimizers.Adam(rate, beta_1=train_params.beta_1,
                                          beta_2=train_params.beta_2, **clip)
    return keras.optimizers.LossScaleOptimizer(optimizer) if loss_scaling else optimizer


def ramp_down_steps(train_params: TrainParams) -> int:
    """How many of the run's last steps train.learning_rate_ramp_down spans; 0: none."""
    return train_params.last_steps(train_params.learning_rate_ramp_down)


def average_decay(cap, steps):
    """The sampling average's decay after `steps` steps: (1 + t) / (10 + t), at most `cap`.

    The average starts by following the generator closely and slows to the set decay, so that
    early snapshots and short runs are not dominated by the random initial weights (the
    warm-up of tf.train.ExponentialMovingAverage). `steps` is a float32 tensor or scalar.
    """
    return tf.minimum(cap, (1.0 + steps) / (10.0 + steps))


def refresh_rng(seed: int) -> np.random.Generator:
    """The latent vectors' source for refreshing batch-norm statistics of a run of train.seed
    `seed`: the train stage's, so that a benchmark's refresh equals the pipeline's."""
    return np.random.default_rng([seed, 2])


def refresh_batch_norm_statistics(generator: keras.Model, count: int, batch_size: int,
                                  rng: np.random.Generator) -> None:
    """Sets every batch-norm layer's statistics of `generator` to the mean of its batch means
    and variances over `count` batches of latent vectors drawn from `rng`."""
    norms = [layer for layer in generator.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    latent_dim = generator.input_shape[1]
    try:
        for index in range(count):
            for layer in norms:
                # moving = moving * momentum + batch * (1 - momentum): a running mean.
                layer.momentum = index / (index + 1)
            latents = rng.standard_normal((batch_size, latent_dim))
            generator(latents.astype(np.float32), training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum


class GAN:
    """The networks, their optimizers and the compiled training step."""

    def __init__(self, model_params: ModelParams, train_params: TrainParams, engine: Engine):
        self.model_params, self.train_params, self.engine = model_params, train_params, engine
        self.loss = make_loss(train_params.loss, train_params.label_noise)
        self.policies = train_params.augment
        keras.utils.set_random_seed(train_params.seed)
        with engine.strategy.scope(), _global_policy(engine.precision):
            self.generator = build_generator(model_params)
            self.discriminator = build_discriminator(model_params)
            self.ema_generator = None
            if train_params.ema > 0:
                # The average samples, so it computes in float32 under any precision: mixed
                # precision shortens the training step, and sampling gives the weights' images.
                with _global_policy("float32"):
                    self.ema_generator = build_generator(model_params)
                self.ema_generator.set_weights(self.generator.get_weights())
            self.d_optimizer = make_optimizer(train_params, train_params.d_learning_rate,
                                              engine.loss_scaling)
            self.g_optimizer = make_optimizer(train_params, train_params.g_learning_rate,
                                              engine.loss_scaling)
            self.d_optimizer.build(self.discriminator.trainable_variables)
            self.g_optimizer.build(self.generator.trainable_variables)
            # LeCam's anchors: moving averages of the discriminator's outputs on reals and
            # fakes, signed so that higher means "real" whichever way the loss labels them.
            self.lecam_anchors = tf.Variable(
                [0.0, 0.0], trainable=False, name="lecam_anchors",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            # The chance each augmentation policy applies (ADA's p), then the sum of the signs
            # of the discriminator's outputs on reals and the count of those reals since the
            # chance last moved.
            self.augment_state = None
            if train_params.gated_augment:
                self.augment_state = tf.Variable(
                    [train_params.augment_probability, 0.0, 0.0], trainable=False,
                    name="augment_state", aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        # The step counter and the first step with a non-finite loss live on the device, so
        # that the loop need not wait for every step's losses to check them.
        self.step_counter = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.first_bad_step = tf.Variable(-1, dtype=tf.int64, trainable=False)
        # One compiled step with the R1 penalty and one without: lazy R1 picks one per step.
        self._replica_step = tf.function(self._train_replica, jit_compile=engine.jit_compile)
        self._step = tf.function(self._train_step)

    def step_fn(self, iterator) -> dict:
        """One training step on the iterator's next batch; returns its metrics as tensors."""
        return self._step(iterator, with_r1=self.r1_due())

    def r1_due(self) -> bool:
        """Whether the next step adds the R1 penalty, and R2 beside it (see train.r1_every).

        Lazy R1 reads the step counter, so each step waits for the one before it to finish.
        """
        params = self.train_params
        if params.r1_gamma == 0 and params.r2_gamma == 0:
            return False
        return params.r1_every == 1 or int(self.step_counter) % params.r1_every == 0

    def r1_weight(self):
        """R1's weight (gamma) on the step the step counter names: r1_gamma, or with
        train.r1_gamma_growth != 1 a line from r1_gamma on the first step to r1_gamma times the
        growth on the last."""
        params = self.train_params
        if params.r1_gamma_growth == 1:
            return params.r1_gamma
        return params.r1_gamma * self._line_from_one(params.r1_gamma_growth)

    def _squared_norm(self, gradients):
        """The squared norm of `gradients`, a batch of images' gradients, as R1 and R2 weigh
        it: the part that their means over 2x2 blocks carry times train.r1_coarse_weight, and
        the rest, the detail finer than a block, times train.r1_fine_weight. The two parts
        are orthogonal, so with both weights 1 it is the plain sum of squares."""
        params = self.train_params
        squares = tf.reduce_sum(tf.square(gradients))
        if params.r1_coarse_weight == params.r1_fine_weight == 1:
            return squares
        # Each block's mean counts once for every pixel of its block.
        coarse = 4 * tf.reduce_sum(tf.square(tf.nn.avg_pool2d(gradients, 2, 2, "VALID")))
        return params.r1_coarse_weight * coarse + params.r1_fine_weight * (squares - coarse)

    def _line_from_one(self, last: float):
        """At the step the step counter names, a line over the run from 1 on its first step
        to `last` on its last."""
        progress = tf.cast(self.step_counter, tf.float32) / max(1, self.train_params.iterations - 1)
        return 1.0 + (last - 1.0) * progress

    @property
    def sampler(self) -> keras.Model:
        """The generator that makes samples: the moving average where one is kept."""
        return self.ema_generator or self.generator

    def state(self) -> dict[str, list]:
        """Every variable a resumed run needs, by owner."""
        parts = {"generator": self.generator.variables,
                 "discriminator": self.discriminator.variables,
                 "d_optimizer": self.d_optimizer.variables,
                 "g_optimizer": self.g_optimizer.variables}
        if self.ema_generator is not None:
            parts["ema_generator"] = self.ema_generator.variables
        if self.train_params.lecam_weight > 0:
            parts["lecam"] = [self.lecam_anchors]
        if self.augment_state is not None:
            parts["augment"] = [self.augment_state]
        return parts

    def augment_chance(self):
        """The chance each augmentation policy applies on the step the step counter names:
        None where every policy always applies, else ADA's or the fixed chance, which
        train.augment_fade scales down over the run's last steps, as the learning rate's
        ramp-down does (RampDown), so that the last step takes 1/steps of it."""
        if self.augment_state is None:
            return None
        params = self.train_params
        steps = params.last_steps(params.augment_fade)
        if not steps:
            return self.augment_state[0]
        return self.augment_state[0] * RampDown(1.0, params.iterations, steps)(self.step_counter)

    def logged_augment_chance(self):
        """What the train log records as the chance each policy applies on the step the step
        counter names: augment_chance() where it is gated, else 1 with policies and 0 without."""
        chance = self.augment_chance()
        if chance is None:
            return tf.constant(1.0 if self.policies else 0.0)
        return chance

    def _augment(self, images, noise):
        if not self.policies:
            return images
        probability = self.augment_chance()
        params = self.train_params
        return diff_augment(images, noise, self.policies, params.augment_translation,
                            params.augment_cutout, params.augment_color, probability,
                            params.augment_saturation)

    def discriminator_step(self, batch, with_r1: bool | None = None) -> dict:
        """One update of the discriminator on fakes and reals; the generator stays fixed.

        The logged d_loss is the adversarial loss alone; the regularisers that are switched
        on (R1, LeCam, consistency) are added to what the optimizer minimises; R1 where
        with_r1 says, by default where r1_due() does.
        """
        if with_r1 is None:
            with_r1 = self.r1_due()
        params = self.train_params
        real = batch["real"]
        size = tf.shape(real)[0]
        batch_size = self._global_batch_size(real)
        fake = tf.cast(self.generator(batch["z_d"], training=True), tf.float32)
        images = tf.concat([self._augment(fake, batch["aug_fake_d"]),
                            self._augment(real, batch["aug_real"])], axis=0)
        sign = 1.0 if self.loss.real_is_positive else -1.0
        with tf.GradientTape() as tape:
            with tf.GradientTape(watch_accessed_variables=False) as input_tape:
                input_tape.watch(images)
                outputs = tf.cast(self.discriminator(images, training=True), tf.float32)
                logits, _ = _split(outputs)
                # R1 and R2 penalise the gradient of the head's logit plus the mean of the
                # patches' logits, the discriminator's whole score of each image.
                scores = _head_and_patch_mean(outputs)
                penalised = tf.reduce_sum(scores[size:])
                if params.r2_gamma > 0:
                    # No fake's logit depends on a real or a real's on a fake (the minibatch
                    # spread never mixes the two), so one gradient of the sum over both holds
                    # the reals' gradients for R1 and the fakes' for R2.
                    penalised += tf.reduce_sum(scores[:size])
            fake_logits, real_logits = logits[:size], logits[size:]
            # Each image's label noise, the same for all its patches.
            d_loss = _head_and_patch_sums(lambda columns: self.loss.d_sum(
                columns[size:], columns[:size],
                tf.broadcast_to(batch["noise_real"], tf.shape(columns[size:])),
                tf.broadcast_to(batch["noise_fake"], tf.shape(columns[:size]))),
                outputs) / batch_size
            total = d_loss
            if with_r1:
                # R1 (Mescheder et al. 2018): the squared gradient norm on the reals the
                # discriminator saw, augmented as they were. With r1_every k > 1 it is
                # StyleGAN2's lazy R1 (Karras et al. 2020): k times the penalty on every k-th
                # step (the 1st, the k+1-th, ...), none on the others, which skip its cost.
                # r1_coarse_weight and r1_fine_weight weigh the two parts of each gradient's
                # squared norm apart (see _squared_norm).
                gradients = input_tape.gradient(penalised, images)
                if params.r1_gamma > 0:
                    total += params.r1_every * self.r1_weight() / 2 * self._squared_norm(
                        gradients[size:]) / batch_size
                if params.r2_gamma > 0:
                    # R2 (R3GAN, Huang et al. 2024): the same penalty on the fakes the
                    # discriminator saw, on R1's steps, at a constant weight.
                    total += params.r1_every * params.r2_gamma / 2 * self._squared_norm(
                        gradients[:size]) / batch_size
            if params.lecam_weight > 0:
                # LeCam (Tseng et al. 2021), as their code writes it: reals are pulled no
                # further up than the fakes' average output, fakes no further down than the
                # reals'.
                real_anchor, fake_anchor = self.lecam_anchors[0], self.lecam_anchors[1]
                penalty = tf.reduce_sum(tf.square(tf.nn.relu(sign * real_logits - fake_anchor)))
                penalty += tf.reduce_sum(tf.square(tf.nn.relu(real_anchor - sign * fake_logits)))
                total += params.lecam_weight * penalty / batch_size
            if params.consistency_weight > 0:
                # bCR (Zhao et al. 2021): the same images under a second augmentation should
                # get the same outputs, for reals and fakes alike.
                views = tf.concat([self._augment(fake, batch["aug_fake_2"]),
                                   self._augment(real, batch["aug_real_2"])], axis=0)
                other = tf.cast(self.discriminator(views, training=True), tf.float32)
                total += params.consistency_weight * tf.reduce_sum(
                    _head_and_patch_mean(tf.square(other - outputs))) / batch_size
            scaled = self.d_optimizer.scale_loss(total)
        variables = self.discriminator.trainable_variables
        self.d_optimizer.apply(tape.gradient(scaled, variables), variables)
        if params.lecam_weight > 0:
            self._update_lecam_anchors(sign * real_logits, sign * fake_logits, batch_size)
        if params.augment_target > 0:
            self._adapt_augment_probability(sign * real_logits, batch_size)
        if self.loss.pairs_reals:
            # A pairing loss judges only differences of logits, so a logit's sign says nothing:
            # both accuracies are the fraction of pairs the discriminator ranks right.
            ranked = self._fraction(real_logits > fake_logits, batch_size)
            return {"d_loss": d_loss, "d_real_accuracy": ranked, "d_fake_accuracy": ranked}
        return {"d_loss": d_loss,
                "d_real_accuracy": self._fraction(sign * real_logits > 0, batch_size),
                "d_fake_accuracy": self._fraction(sign * fake_logits < 0, batch_size)}

    def _update_lecam_anchors(self, real_logits, fake_logits, batch_size):
        # Global means over every replica's share of the batch, then the moving average.
        context = tf.distribute.get_replica_context()
        sums = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.stack([
            tf.reduce_sum(real_logits), tf.reduce_sum(fake_logits)]))
        means = tf.stop_gradient(sums / batch_size)
        self.lecam_anchors.assign(LECAM_DECAY * self.lecam_anchors + (1 - LECAM_DECAY) * means)

    def _adapt_augment_probability(self, real_logits, batch_size):
        # ADA (Karras et al. 2020): every ADA_INTERVAL steps, r_t, the mean sign of the
        # outputs on the reals since the last move, is compared with its target: above it the
        # discriminator is taken to overfit and the chance rises, below it the chance falls,
        # by the reals counted over augment_ramp, within [0, 1]. The generator's step that
        # follows already augments with the moved chance.
        params = self.train_params
        context = tf.distribute.get_replica_context()
        signs = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                   tf.reduce_sum(tf.sign(real_logits)))
        probability = self.augment_state[0]
        total = self.augment_state[1] + signs
        count = self.augment_state[2] + batch_size
        due = count >= ADA_INTERVAL * batch_size
        moved = tf.clip_by_value(
            probability + tf.sign(total / count - params.augment_target) * count
            / params.augment_ramp, 0.0, 1.0)
        self.augment_state.assign(tf.stack([tf.where(due, moved, probability),
                                            tf.where(due, 0.0, total),
                                            tf.where(due, 0.0, count)]))

    def generator_step(self, batch) -> dict:
        """One update of the generator through the discriminator, which stays frozen."""
        with tf.GradientTape() as tape:
            fake = tf.cast(self.generator(batch["z_g"], training=True), tf.float32)
            images = self._augment(fake, batch["aug_fake_g"])
            if self.loss.pairs_reals:
                # The reals of the step, augmented as the discriminator saw them, in the same
                # call as the fakes, as in the discriminator's step.
                images = tf.concat([images, self._augment(batch["real"], batch["aug_real"])], 0)
            outputs = tf.cast(self.discriminator(images, training=True), tf.float32)
            size = tf.shape(fake)[0]
            kept, count = self._top_k(outputs[:, :1])

            def g_sum(columns):
                if self.loss.pairs_reals:
                    return self.loss.g_sum(columns[:size], columns[size:])
                if kept is None:
                    return self.loss.g_sum(columns)
                return self.loss.g_sum(columns, weights=kept)

            learned = self._global_batch_size(fake) if kept is None else count
            g_loss = _head_and_patch_sums(g_sum, outputs) / learned
            scaled = self.g_optimizer.scale_loss(g_loss)
        variables = self.generator.trainable_variables
        self.g_optimizer.apply(tape.gradient(scaled, variables), variables)
        return {"g_loss": g_loss}

    def _top_k(self, head):
        """Top-k training (Sinha et al. 2020): per fake, 1 where it is among those the
        discriminator finds most real, else 0, and how many those are over every replica;
        None where the generator learns from every fake (train.g_top_k 1). The kept share
        falls linearly from all on the first step to train.g_top_k on the last, as the
        paper's falls by 0.99 an epoch to no less than 0.5: the generator learns from the
        fakes that are nearly right, not from those the discriminator rejects outright. The
        fakes are ranked across replicas, so that the kept ones are the same on any number of
        devices."""
        share = self.train_params.g_top_k
        if share == 1:
            return None, None
        realness = head[:, 0] if self.loss.real_is_positive else -head[:, 0]
        everyone = tf.distribute.get_replica_context().all_gather(realness, axis=0)
        count = tf.maximum(1.0, tf.round(self._line_from_one(share)
                                         * tf.cast(tf.shape(everyone)[0], tf.float32)))
        # The count-th highest realness; an index into a sorted copy keeps shapes static, as
        # XLA needs. Fakes that tie with it are all kept.
        threshold = tf.sort(everyone, direction="DESCENDING")[tf.cast(count, tf.int32) - 1]
        return tf.cast(realness >= threshold, tf.float32)[:, None], count

    def _fraction(self, condition, batch_size):
        # A share of the global batch, so that replicas' shares add up.
        return tf.reduce_sum(tf.cast(condition, tf.float32)) / batch_size

    def _global_batch_size(self, images):
        # The step's batch over every replica: train.batch_size, or train.late_batch_size over
        # the run's last train.late_share.
        return tf.cast(tf.shape(images)[0] * self.engine.replicas, tf.float32)

    def _train_replica(self, batch, with_r1: bool):
        return {**self.discriminator_step(batch, with_r1), **self.generator_step(batch)}

    def _train_step(self, iterator, with_r1: bool):
        strategy = self.engine.strategy
        per_replica = strategy.run(self._replica_step, args=(next(iterator),),
                                   kwargs={"with_r1": with_r1})
        metrics = {name: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                   for name, value in per_replica.items()}
        self.step_counter.assign_add(1)
        metrics["augment_probability"] = self.logged_augment_chance()
        finite = tf.math.is_finite(metrics["d_loss"]) & tf.math.is_finite(metrics["g_loss"])
        # An update can turn the weights to NaN while its own loss is still finite; that
        # step counts as the first bad one, so that no checkpoint keeps such weights.
        for variables in (self.generator.trainable_variables,
                          self.discriminator.trainable_variables):
            for variable in variables:
                finite &= tf.reduce_all(tf.math.is_finite(variable))
        self.first_bad_step.assign(tf.where(
            (self.first_bad_step < 0) & tf.logical_not(finite), self.step_counter,
            self.first_bad_step))
        if self.ema_generator is not None:
            decay = average_decay(self.train_params.ema, tf.cast(self.step_counter, tf.float32))
            for average, weight in zip(self.ema_generator.variables,
                                       self.generator.variables):
                if weight.trainable:
                    average.assign(decay * average + (1.0 - decay) * weight)
                else:
                    average.assign(weight)
        return metrics

    def raise_if_diverged(self, kept_step: int | None) -> None:
        """Raises TrainingError naming the first step whose loss or weights were not finite.

        Args:
            kept_step: the step of the checkpoint a rerun would resume from, if any.
        """
        bad = int(self.first_bad_step.numpy())
        if bad >= 0:
            kept = ("no checkpoint is kept" if kept_step is None
                    else f"the checkpoint at step {kept_step} is kept")
            raise TrainingError(
                f"train: the losses or weights became NaN or infinite at step {bad}; stopped, "
                f"and {kept}. Lower the learning rates or turn on train.clipvalue")

    def refresh_sampler_statistics(self, most: int | None = None) -> None:
        """Recomputes the moving average's batch-norm statistics for its own weights.

        The average copies the generator's running statistics, which belong to the
        generator's weights, not to the averaged ones. With ema_bn_batches > 0 they are
        recomputed from that many batches of fixed latent vectors run through the average
        (BigGAN's "standing statistics"): each batch-norm layer ends with the mean of the
        batches' means and variances.

        Args:
            most: run at most this many of those batches (the first ones), for a cheaper
                estimate.
        """
        count = self.train_params.ema_bn_batches
        if most is not None:
            count = min(count, most)
        if self.ema_generator is None or count == 0:
            return
        refresh_batch_norm_statistics(self.ema_generator, count,
                                      self.train_params.last_batch_size,
                                      refresh_rng(self.train_params.seed))

    def generate(self, latents: np.ndarray, refresh_most: int | None = None) -> np.ndarray:
        """Images of the sampling generator for `latents`, as uint8.

        Args:
            refresh_most: refresh the average's statistics from at most this many batches.
        """
        self.refresh_sampler_statistics(refresh_most)
        return generate_images(self.sampler, latents, self.train_params.pixel_range)


def _split(outputs):
    """The discriminator's logit per image, and its per-patch logits where it has them
    (model.d_local_loss patches): its outputs' first column, and the others."""
    if outputs.shape[-1] == 1:
        return outputs, None
    return outputs[:, :1], outputs[:, 1:]


def _head_and_patch_sums(loss_sum, outputs):
    """A loss's sum over the head's logits, plus the mean over the patches of its sums over
    each patch's logits, where the discriminator has them; loss_sum takes columns of
    outputs."""
    head, patches = _split(outputs)
    total = loss_sum(head)
    return total if patches is None else total + loss_sum(patches) / patches.shape[1]


def _head_and_patch_mean(values):
    """Per image: a value of the head's logit plus the mean of its values over the patches."""
    head, patches = _split(values)
    return head if patches is None else head + tf.reduce_mean(patches, axis=1, keepdims=True)
