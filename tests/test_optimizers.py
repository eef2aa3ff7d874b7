"""Keras2RMSprop against a NumPy transcription of Keras 2.0.8's RMSprop update."""

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from dcgan.optimizers import Keras2RMSprop, RampDown

# One row per update, one column per variable component. Each column keeps its sign, so the
# distance travelled only grows and can be compared to a relative tolerance. The columns are
# far below sqrt(1e-8) and sqrt(1e-7) (where the place of epsilon decides the step), at the
# crossover, ordinary, and crossing the clip value of 1 both ways.
GRADIENTS = np.array([
    [1e-6, 1e-9, 0.0, 3e-4, -0.02, 0.5, -2.5, 1e-3],
    [2e-6, 3e-9, 0.0, 1e-4, -0.03, 40.0, -0.1, 1e-7],
    [5e-7, 1e-9, 0.0, 5e-4, -0.01, 0.3, -60.0, 2.0],
    [1e-6, 2e-9, 0.0, 3e-4, -0.05, 3.0, -0.5, 1e-9],
    [3e-6, 1e-9, 0.0, 2e-4, -0.02, 0.9, -1.2, 0.5],
    [1e-6, 5e-9, 0.0, 4e-4, -0.04, 1.5, -0.01, 1e-5],
], dtype=np.float32)

RTOL = 1e-6


def keras2_rmsprop(gradients, learning_rate, rho=0.9, epsilon=1e-8, decay=0.0, clipvalue=None):
    """Keras 2.0.8's RMSprop.get_updates and Optimizer.get_gradients, in float32.

    Returns the variable, starting from zeros, after each update.
    """
    f32 = np.float32
    variable = np.zeros(gradients.shape[1], f32)
    accumulator = np.zeros(gradients.shape[1], f32)
    path = []
    for iteration, gradient in enumerate(gradients):
        if clipvalue:
            gradient = np.clip(gradient, f32(-clipvalue), f32(clipvalue))
        rate = f32(learning_rate) * (f32(1.0) / (f32(1.0) + f32(decay) * f32(iteration)))
        accumulator = f32(rho) * accumulator + (f32(1.0) - f32(rho)) * np.square(gradient)
        variable = variable - rate * gradient / (np.sqrt(accumulator) + f32(epsilon))
        path.append(variable)
    return np.array(path)


def run_updates(optimizer, gradients, mode="eager", loss_scale=2.0 ** 15):
    """Applies each row of `gradients` to a zero variable; returns the variable after each."""
    variable = keras.Variable(np.zeros(gradients.shape[1], np.float32))
    if mode == "loss_scaled":
        # The loss scale optimizer receives scaled gradients, unscales them and hands them to
        # the inner optimizer, which must clip the unscaled ones. A power of two scales exactly.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=loss_scale)
        gradients = gradients * np.float32(loss_scale)

    def apply(gradient):
        optimizer.apply([gradient], [variable])

    if mode in ("function", "jit"):
        apply = tf.function(apply, jit_compile=mode == "jit")
    path = []
    for gradient in gradients:
        apply(tf.constant(gradient))
        path.append(variable.numpy())
    return np.array(path)


@pytest.mark.parametrize("mode", ["eager", "function", "jit", "loss_scaled"])
@pytest.mark.parametrize("clipvalue, decay", [(None, 0.0), (1.0, 0.0), (1.0, 0.1)])
def test_updates_match_keras_2(mode, clipvalue, decay):
    # A large decay makes the learning rate of every update visible at this tolerance; the
    # book's 1e-8 changes it by less than 1e-4 over 10,000 updates.
    expected = keras2_rmsprop(GRADIENTS, 0.001, decay=decay, clipvalue=clipvalue)
    optimizer = Keras2RMSprop(0.001, decay=decay, clipvalue=clipvalue)
    np.testing.assert_allclose(run_updates(optimizer, GRADIENTS, mode), expected, rtol=RTOL,
                               atol=0)


def test_keras_3_rmsprop_takes_another_path():
    # The comparison above can tell the two apart: Keras 3 moves the tiny-gradient columns
    # about a thousand times less.
    expected = keras2_rmsprop(GRADIENTS, 0.001, clipvalue=1.0)
    keras3 = run_updates(keras.optimizers.RMSprop(0.001, clipvalue=1.0), GRADIENTS)
    assert not np.allclose(keras3, expected, rtol=RTOL, atol=0)
    tiny_columns = slice(0, 2)
    assert np.all(np.abs(keras3[-1, tiny_columns]) < np.abs(expected[-1, tiny_columns]) / 100)


def test_config_round_trips_through_keras_serialization():
    optimizer = Keras2RMSprop(0.0008, clipvalue=1.0, decay=1e-8)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, Keras2RMSprop)
    assert restored.get_config() == optimizer.get_config()
    assert (restored.rho, restored.epsilon, restored.decay, restored.clipvalue) == (
        0.9, 1e-8, 1e-8, 1.0)


def test_norm_clipping_is_refused():
    with pytest.raises(ValueError, match="clipnorm"):
        Keras2RMSprop(0.001, clipnorm=1.0)


def test_ramp_down_holds_the_rate_then_falls_linearly_to_the_runs_end():
    ramp = RampDown(0.004, total_steps=10, ramp_steps=4)
    rates = [float(ramp(step)) for step in range(10)]
    np.testing.assert_allclose(rates, [0.004] * 7 + [0.003, 0.002, 0.001], rtol=1e-6)
    # It multiplies a schedule as readily as a number: here Keras 2's decay.
    decayed = RampDown(keras.optimizers.schedules.InverseTimeDecay(0.004, 1, 0.5), 10, 4)
    assert float(decayed(8)) == pytest.approx(0.004 / (1 + 0.5 * 8) * 2 / 4)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(decayed))
    assert float(restored(8)) == float(decayed(8))


@pytest.mark.parametrize("ramp_steps", [0, 11])
def test_ramp_down_must_lie_within_the_run(ramp_steps):
    with pytest.raises(ValueError, match="ramp_steps must be in"):
        RampDown(0.001, total_steps=10, ramp_steps=ramp_steps)


# Two logical CPUs must be configured before TensorFlow starts, so this runs in a fresh
# interpreter. Each device differentiates its own loss; Keras 2 clipped the whole batch's
# gradient, which here is the sum of the two.
DISTRIBUTED = """
import json, sys
import keras, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, {root!r})
from dcgan.optimizers import Keras2RMSprop
shares = tf.constant({shares!r}, tf.float32)
strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
with strategy.scope():
    variable = keras.Variable(np.zeros(shares.shape[-1], np.float32))
    optimizer = Keras2RMSprop(0.001, clipvalue=1.0)
    optimizer.build([variable])

def replica_step(step_shares):
    share = step_shares[tf.distribute.get_replica_context().replica_id_in_sync_group]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(variable * share)
    optimizer.apply(tape.gradient(loss, [variable]), [variable])

@tf.function
def step(step_shares):
    strategy.run(replica_step, args=(step_shares,))

path = []
for step_shares in shares:
    step(step_shares)
    path.append(variable.numpy().tolist())
print(json.dumps({{"replicas": strategy.num_replicas_in_sync, "path": path}}))
"""


def test_clips_the_gradient_summed_over_devices():
    # Per update, the two devices' shares of the gradient. The first column exceeds the clip
    # value only once summed; the last has one device above it and a sum below, or devices
    # of opposite signs, so that clipping each share, or each share and then the sum, differs.
    shares = [[[0.8, -0.6, 1.5], [0.8, -0.6, -1.0]],
              [[0.1, -0.05, 0.8], [0.1, -0.05, 0.3]],
              [[0.3, -2.0, 3.0], [0.3, -2.0, -1.5]]]
    script = DISTRIBUTED.format(root=str(Path(__file__).resolve().parents[1]), shares=shares)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    run = json.loads(result.stdout.strip().splitlines()[-1])
    assert run["replicas"] == 2
    expected = keras2_rmsprop(np.array(shares, np.float32).sum(axis=1), 0.001, clipvalue=1.0)
    np.testing.assert_allclose(np.array(run["path"], np.float32), expected, rtol=RTOL, atol=0)
