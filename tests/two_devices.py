"""Runs test code in a fresh interpreter whose CPU is split into two logical devices.

Logical devices must be set before TensorFlow starts, hence the fresh interpreter. The code
finds `mirrored`, one MirroredStrategy over both devices, to use for every two-device run:
several MirroredStrategy objects in one process share collective keys and can abort each
other (tensorflow/tensorflow#61314), and the train stage makes one per process. It reports by
assigning a JSON-serialisable `results`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

PRELUDE = """
import json, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, {tests!r})
mirrored = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
"""


def run_on_two_devices(code: str, timeout: float = 600):
    """Runs `code` after PRELUDE and returns the `results` it assigned."""
    script = (PRELUDE.format(tests=str(Path(__file__).parent)) + textwrap.dedent(code)
              + "\nprint(json.dumps(results))\n")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               timeout=timeout)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])
