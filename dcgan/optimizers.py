"""RMSprop as Keras 2.0.8 computed it, the optimizer the book's GAN was tuned with, and a
learning-rate ramp-down at the end of a run, which Keras 3's schedules do not offer."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="dcgan")
class Keras2RMSprop(keras.optimizers.Optimizer):
    """RMSprop with Keras 2.0.8's update, which Keras 3's RMSprop changed in three ways.

    For a variable `p` with gradient `g` at its `t`-th update (counting from 0), Keras 2.0.8 did

        g = clip(g, -clipvalue, clipvalue)
        a = rho * a + (1 - rho) * g ** 2
        p = p - learning_rate / (1 + decay * t) * g / (sqrt(a) + epsilon)

    with epsilon 1e-8. Keras 3's RMSprop divides by sqrt(a + epsilon) with epsilon 1e-7, which
    shrinks the step of every gradient much smaller than sqrt(1e-7), about 3e-4, by up to a
    thousand times; it warns that `decay` is no longer supported and ignores it; and it clips
    each device's share of the gradient before adding the shares up. Here the clip applies to
    the summed gradient, as it did to the whole batch's gradient on the book's one device.

    Args:
        learning_rate: the step size before decay (Keras 2 called it `lr`).
        rho: the decay of the moving average of squared gradients.
        epsilon: added to the root of that average, outside the square root.
        decay: the step size at update `t` is `learning_rate / (1 + decay * t)`.
        clipvalue: if set, each gradient component is clipped to [-clipvalue, clipvalue].
        **kwargs: the other arguments of keras.optimizers.Optimizer (name, weight_decay, ...),
            except clipnorm and global_clipnorm.

    Raises:
        ValueError: clipnorm or global_clipnorm is given; Keras 2's clipnorm scaled by the
            norm of all gradients together, which neither Keras 3 argument does after the
            gradients of several devices are summed.
    """

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, epsilon: float = 1e-8,
                 decay: float = 0.0, clipvalue: float | None = None, name: str = "keras2_rmsprop",
                 **kwargs):
        for argument in ("clipnorm", "global_clipnorm"):
            if kwargs.get(argument) is not None:
                raise ValueError(f"Keras2RMSprop: {argument} is not supported; use clipvalue, "
                                 "which is what the book uses")
        super().__init__(learning_rate=learning_rate, clipvalue=clipvalue, name=name, **kwargs)
        if decay < 0:
            raise ValueError(f"Keras2RMSprop: decay must be >= 0, found {decay!r}")
        self.rho, self.epsilon, self.decay = rho, epsilon, decay

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._accumulators = self.add_optimizer_variables(variables, "accumulator")

    def _clip_gradients(self, gradients):
        # The base class clips before tf.distribute sums the devices' gradients; update_step
        # clips after, so that clipping sees the gradient of the whole batch.
        return gradients

    def update_step(self, gradient, variable, learning_rate):
        # Written in Keras 2's order of operations, with rho and decay as float32 tensors as
        # Keras 2 held them, so that float32 rounding matches too.
        dtype = variable.dtype
        gradient = ops.cast(gradient, dtype)
        if self.clipvalue:
            gradient = ops.clip(gradient, -self.clipvalue, self.clipvalue)
        learning_rate = ops.cast(learning_rate, dtype)
        if self.decay > 0:
            # `iterations` counts the updates before this one: the base class adds one after.
            earlier_updates = ops.cast(self.iterations, dtype)
            decay = ops.cast(self.decay, dtype)
            learning_rate = learning_rate * (1.0 / (1.0 + decay * earlier_updates))
        rho = ops.cast(self.rho, dtype)
        accumulator = self._accumulators[self._get_variable_index(variable)]
        new_accumulator = rho * accumulator + (1.0 - rho) * ops.square(gradient)
        self.assign(accumulator, new_accumulator)
        self.assign_sub(variable,
                        learning_rate * gradient / (ops.sqrt(new_accumulator) + self.epsilon))

    def get_config(self):
        config = super().get_config()
        config.update({"rho": self.rho, "epsilon": self.epsilon, "decay": self.decay})
        return config


@keras.saving.register_keras_serializable(package="dcgan")
class RampDown(keras.optimizers.schedules.LearningRateSchedule):
    """A learning rate held for a run's first updates, then scaled down linearly to its end.

    At update `t` (counting from 0) of a run of `total_steps` updates, the rate is `rate`
    times min(1, (total_steps - t) / ramp_steps): whole up to update total_steps - ramp_steps,
    then smaller by 1/ramp_steps of itself at each later update, so that the last takes
    1/ramp_steps of it. Keras 3's PolynomialDecay falls from the first update on.

    Args:
        rate: a number, or a schedule (Keras 2's decay) that the ramp multiplies.
        total_steps: the updates of the whole run (train.iterations).
        ramp_steps: how many of them, at the end, the ramp spans; at least 1.
    """

    def __init__(self, rate, total_steps: int, ramp_steps: int):
        if not 1 <= ramp_steps <= total_steps:
            raise ValueError(f"RampDown: ramp_steps must be in [1, total_steps={total_steps}], "
                             f"found {ramp_steps!r}")
        self.rate, self.total_steps, self.ramp_steps = rate, total_steps, ramp_steps

    def __call__(self, step):
        rate = self.rate(step) if callable(self.rate) else self.rate
        remaining = (self.total_steps - ops.cast(step, "float32")) / self.ramp_steps
        return rate * ops.clip(remaining, 0.0, 1.0)

    def get_config(self):
        rate = (keras.saving.serialize_keras_object(self.rate)
                if isinstance(self.rate, keras.optimizers.schedules.LearningRateSchedule)
                else self.rate)
        return {"rate": rate, "total_steps": self.total_steps, "ramp_steps": self.ramp_steps}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["rate"], dict):
            config["rate"] = keras.saving.deserialize_keras_object(config["rate"])
        return cls(**config)
