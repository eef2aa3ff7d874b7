"""The GPU path on the CPU: every engine `auto` can choose trains, saves and reloads."""

import numpy as np
import pytest

from dcgan.engine import choose, onednn_avx512
from dcgan.errors import ParamsError
from dcgan.params import parse_section
from tiny import tiny_params
from two_devices import run_on_two_devices


def switches(**overrides):
    params = tiny_params(**{f"train__{key}": value for key, value in overrides.items()})
    return parse_section("train", params["train"])


AUTO = dict(jit_compile="auto", mixed_precision="auto", distribute="auto")


@pytest.mark.parametrize("gpus, cpus, avx512, expected", [
    (0, 1, False, (True, "float32", "one")),  # a CPU: XLA on one device
    (0, 1, True, (False, "float32", "one")),  # a CPU with AVX-512: oneDNN's step, no XLA
    (0, 2, False, (False, "float32", "cpus")),  # a CPU split on purpose: several devices, no XLA
    (1, 1, False, (True, "mixed_float16", "one")),  # one GPU: XLA and float16
    (1, 1, True, (True, "mixed_float16", "one")),  # one GPU on an AVX-512 host: XLA still
    (2, 1, False, (False, "mixed_float16", "gpus")),  # several GPUs: float16, no XLA
])
def test_what_auto_chooses(gpus, cpus, avx512, expected):
    assert choose(switches(**AUTO, deterministic=False), gpus, cpus,
                  cpu_avx512=avx512) == expected


@pytest.mark.parametrize("gpus, cpus, avx512, expected", [
    (0, 1, True, (True, "float32", "one")),  # AVX-512: XLA, whose step repeats where oneDNN's not
    (0, 1, False, (True, "float32", "one")),
    (0, 2, True, (False, "float32", "cpus")),  # several devices: XLA cannot run there
    (1, 1, True, (True, "mixed_float16", "one")),
])
def test_a_deterministic_run_compiles_its_step_where_it_can(gpus, cpus, avx512, expected):
    assert choose(switches(**AUTO, deterministic=True), gpus, cpus,
                  cpu_avx512=avx512) == expected


def test_explicit_switches_win_and_impossible_ones_are_refused():
    assert choose(switches(**AUTO | {"distribute": "off"}), 2, 1,
                  cpu_avx512=False) == (True, "mixed_float16", "one")
    assert choose(switches(**AUTO | {"jit_compile": "off"}), 1, 1,
                  cpu_avx512=False) == (False, "mixed_float16", "one")
    assert choose(switches(**AUTO | {"jit_compile": "on"}), 0, 1,
                  cpu_avx512=True) == (True, "float32", "one")
    with pytest.raises(ParamsError, match="^train.jit_compile: 'on' cannot run on several"):
        choose(switches(**AUTO | {"jit_compile": "on"}), 2, 1, cpu_avx512=False)
    with pytest.raises(ParamsError, match="^train.mixed_precision: 'on' needs a GPU"):
        choose(switches(**AUTO | {"mixed_precision": "on"}), 0, 1, cpu_avx512=False)


XEON = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R)\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n"
EPYC = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma\n"


@pytest.mark.parametrize("cpuinfo, environ, expected", [
    (XEON, {}, True),
    (EPYC, {}, False),
    (EPYC.replace("fma", "avx512_vnni"), {}, False),  # another AVX-512 flag, not the base one
    (XEON.replace("flags", "bugs"), {}, False),        # the word outside the flags line
    (XEON, {"TF_ENABLE_ONEDNN_OPTS": "0"}, False),      # oneDNN off: XLA is the faster step
    (XEON, {"TF_ENABLE_ONEDNN_OPTS": "1"}, True),
    (None, {}, False),                                 # no /proc/cpuinfo (macOS, Windows)
])
def test_onednn_avx512_reads_the_cpu_flags(tmp_path, cpuinfo, environ, expected):
    path = tmp_path / "cpuinfo"
    if cpuinfo is not None:
        path.write_text(cpuinfo)
    assert onednn_avx512(path, environ) is expected


# Each engine that auto picks on some machine is built as that machine would build it (float16
# and XLA both run on a CPU; two logical CPUs stand in for two GPUs), then trains a few steps,
# saves its outputs, reloads the generator and samples. The engine of one CPU with AVX-512 (no
# XLA, float32) is the one every other training test here runs, and that of a CPU split in two
# (float32 on two devices) the one tests/test_distribute.py trains, so both are left out; the
# compiled float32 step of a CPU without AVX-512 runs in tests/test_regularisers.py.
CODE = """
from tiny import tiny_params
from dcgan import train_outputs, training
from dcgan.engine import Engine
from dcgan.params import parse_section
from dcgan.sampling import draw_samples, load_generator
images = np.random.default_rng(0).integers(0, 256, (32, 32, 32, 3), dtype=np.uint8)
results = {{}}
for recipe in ("chollet", "compact"):
    for name, jit, devices in (("one GPU", True, 1), ("several GPUs", False, 2)):
        params = tiny_params(recipe, train__iterations=3, train__deterministic=False)
        model = parse_section("model", params["model"])
        train = parse_section("train", params["train"])
        strategy = mirrored if devices == 2 else tf.distribute.get_strategy()
        folder = {folder!r} + f"/{{recipe}}-{{name}}"
        result = training.fit(images, model, train, folder + "/checkpoints", "d",
                              engine=Engine(strategy, jit, "mixed_float16"))
        train_outputs.save_outputs(result, folder + "/models")
        generator = load_generator(folder + "/models/generator.keras")
        samples, _ = draw_samples(generator, 5, 0, 5, train.pixel_range)
        results[f"{{recipe}}, {{name}}"] = {{
            "losses": [[r["d_loss"], r["g_loss"]] for r in result.log_rows],
            "policy": result.gan.generator.layers[-1].dtype_policy.name,
            "compute": result.gan.generator.layers[1].dtype_policy.compute_dtype,
            "replicas": result.gan.engine.replicas,
            "samples": list(samples.shape), "spread": int(samples.max()) - int(samples.min())}}
"""


def test_every_engine_auto_can_choose_trains_saves_and_reloads(tmp_path):
    runs = run_on_two_devices(CODE.format(folder=str(tmp_path)))
    assert len(runs) == 4
    for name, run in runs.items():
        assert len(run["losses"]) == 3 and all(np.isfinite(run["losses"]).ravel()), name
        assert run["samples"] == [5, 32, 32, 3] and run["spread"] > 0, name
        assert run["replicas"] == (2 if "several" in name else 1), name
        assert run["compute"] == "float16", name
        # The image layer stays float32 under float16 training, so outputs keep full range.
        assert run["policy"] == "float32", name
