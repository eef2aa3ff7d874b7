"""Training on several devices: the host's CPU split in two stands in for two GPUs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Logical devices must be configured before TensorFlow starts, so the runs happen in a fresh
# interpreter. It trains the same tiny recipe on one device and on two and prints the losses.
SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, {tests!r})
from tiny import tiny_params
from dcgan import training
from dcgan.params import parse_section
images = np.random.default_rng(0).integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
runs = {{}}
for mode in ("off", "auto"):
    params = tiny_params({recipe!r}, model__dropout=0.0, train__iterations=4,
                         train__distribute=mode, train__deterministic=False, **{overrides!r})
    model, train = parse_section("model", params["model"]), parse_section("train", params["train"])
    result = training.fit(images, model, train, {folder!r} + mode,
                            "d")
    runs[mode] = {{"devices": result.gan.engine.replicas,
                  "losses": [[r["d_loss"], r["g_loss"]] for r in result.log_rows],
                  "anchors": result.gan.lecam_anchors.numpy().tolist()}}
print(json.dumps(runs))
"""

# Float sums split over two devices add up in another order; nothing else differs.
TOLERANCE = 1e-5


# Every discriminator regulariser at once, and the average's standing statistics: the
# regularisers divide by the global batch and LeCam's anchors average over both devices.
LEVERS = {"train__r1_gamma": 10.0, "train__lecam_weight": 10.0, "train__consistency_weight": 10.0,
          "train__ema_bn_batches": 2}


@pytest.mark.parametrize("recipe, overrides", [
    ("chollet", {}), ("compact", {}), ("compact", LEVERS)], ids=["chollet", "compact", "levers"])
def test_two_devices_match_one_device(tmp_path, recipe, overrides):
    script = SCRIPT.format(tests=str(Path(__file__).parent), recipe=recipe,
                           overrides=overrides, folder=str(tmp_path / "checkpoints-"))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = json.loads(result.stdout.strip().splitlines()[-1])
    assert runs["off"]["devices"] == 1 and runs["auto"]["devices"] == 2
    assert len(runs["off"]["losses"]) == len(runs["auto"]["losses"]) == 4
    for one, two in zip(runs["off"]["losses"], runs["auto"]["losses"]):
        assert one == pytest.approx(two, rel=TOLERANCE, abs=TOLERANCE)
    # The anchors are a hundredth of mean logits near zero, so their error is an absolute one.
    assert runs["off"]["anchors"] == pytest.approx(runs["auto"]["anchors"], abs=1e-6)
