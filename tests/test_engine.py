"""The GPU path on the CPU: every engine `auto` can choose trains, saves and reloads."""

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

from dcgan import engine, train_outputs, training
from dcgan.engine import Engine, OneDNN, choose, onednn_cpu
from dcgan.errors import ParamsError
from dcgan.params import parse_section
from dcgan.sampling import draw_samples, load_generator
from tiny import random_images, recipe, tiny_params
from two_devices import run_on_two_devices


def switches(**overrides):
    params = tiny_params(**{f"train__{key}": value for key, value in overrides.items()})
    return parse_section("train", params["train"])


AUTO = dict(jit_compile="auto", mixed_precision="auto", distribute="auto")


AVX512 = OneDNN(avx512=True)
BF16 = OneDNN(avx512=True, bfloat16=True)


@pytest.mark.parametrize("gpus, cpus, cpu, expected", [
    (0, 1, OneDNN(), (True, "float32", "one")),           # a CPU: XLA on one device
    (0, 1, AVX512, (False, "float32", "one")),            # AVX-512: oneDNN's step, no XLA
    (0, 1, BF16, (False, "mixed_bfloat16", "one")),       # AVX512_BF16: bfloat16
    (0, 2, OneDNN(), (False, "float32", "cpus")),         # a CPU split on purpose: no XLA
    (0, 2, BF16, (False, "float32", "cpus")),             # bfloat16 on one device only
    (1, 1, OneDNN(), (True, "mixed_float16", "one")),     # one GPU: XLA and float16
    (1, 1, BF16, (True, "mixed_float16", "one")),         # one GPU on such a host: the same
    (2, 1, OneDNN(), (False, "mixed_float16", "gpus")),   # several GPUs: float16, no XLA
])
def test_what_auto_chooses(gpus, cpus, cpu, expected):
    assert choose(switches(**AUTO, deterministic=False), gpus, cpus, cpu=cpu) == expected


@pytest.mark.parametrize("gpus, cpus, cpu, expected", [
    (0, 1, AVX512, (True, "float32", "one")),   # XLA, whose step repeats where oneDNN's does not
    (0, 1, BF16, (True, "float32", "one")),     # XLA: bfloat16's speed was timed without it
    (0, 1, OneDNN(), (True, "float32", "one")),
    (0, 2, AVX512, (False, "float32", "cpus")),  # several devices: XLA cannot run there
    (1, 1, AVX512, (True, "mixed_float16", "one")),
])
def test_a_deterministic_run_compiles_its_step_where_it_can(gpus, cpus, cpu, expected):
    assert choose(switches(**AUTO, deterministic=True), gpus, cpus, cpu=cpu) == expected


@pytest.mark.parametrize("switch, gpus, cpu, expected", [
    ({"distribute": "off"}, 2, OneDNN(), (True, "mixed_float16", "one")),
    ({"jit_compile": "off"}, 1, OneDNN(), (False, "mixed_float16", "one")),
    ({"jit_compile": "on"}, 0, AVX512, (True, "float32", "one")),
    ({"jit_compile": "on"}, 0, BF16, (True, "float32", "one")),
    ({"jit_compile": "off"}, 0, OneDNN(), (False, "float32", "one")),
    ({"mixed_precision": "off"}, 0, BF16, (False, "float32", "one")),
    ({"mixed_precision": "on"}, 0, BF16, (False, "mixed_bfloat16", "one")),  # a CPU's kind
    ({"mixed_precision": "on"}, 0, OneDNN(), (True, "mixed_bfloat16", "one")),
    ({"mixed_precision": "on"}, 1, BF16, (True, "mixed_float16", "one")),      # a GPU's
    ({"mixed_precision": "off"}, 1, OneDNN(), (True, "float32", "one")),
])
def test_explicit_switches_win(switch, gpus, cpu, expected):
    assert choose(switches(**AUTO | switch, deterministic=False), gpus, 1, cpu=cpu) == expected


@pytest.mark.parametrize("cpu, switch, logged", [
    (BF16, "auto", "train.mixed_precision auto: bfloat16, since this CPU computes it"),
    (AVX512, "on", "train.mixed_precision on: this CPU does not compute bfloat16"),
    (BF16, "on", None),
    (BF16, "off", None),
    (AVX512, "auto", None),
])
def test_what_precision_a_cpu_gets_and_why_is_in_the_log(monkeypatch, caplog, cpu, switch,
                                                         logged):
    monkeypatch.setattr(engine, "onednn_cpu", lambda: cpu)
    train = switches(**AUTO | {"mixed_precision": switch, "distribute": "off"},
                     deterministic=False)
    with caplog.at_level(logging.INFO, logger="dcgan.engine"):
        engine.resolve_engine(train)
    lines = [r.getMessage() for r in caplog.records if "mixed_precision" in r.getMessage()]
    if logged is None:
        assert lines == []
    else:
        assert len(lines) == 1 and lines[0].startswith(logged)


def test_xla_asked_for_on_several_devices_is_refused():
    with pytest.raises(ParamsError, match="^train.jit_compile: 'on' cannot run on several"):
        choose(switches(**AUTO | {"jit_compile": "on"}), 2, 1)


XEON = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R)\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n"
EPYC = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma\n"
ZEN5 = XEON.replace("avx512bw", "avx512bw avx512_bf16 avx512_vnni")


@pytest.mark.parametrize("cpuinfo, environ, expected", [
    (XEON, {}, AVX512),
    (EPYC, {}, OneDNN()),
    (EPYC.replace("fma", "avx512_vnni"), {}, OneDNN()),  # another AVX-512 flag, not the base one
    (XEON.replace("flags", "bugs"), {}, OneDNN()),        # the word outside the flags line
    (ZEN5, {}, BF16),
    (XEON.replace("avx512bw", "avx512bw amx_bf16 amx_tile"), {}, BF16),  # AMX's bfloat16
    (XEON.replace("avx512bw", "avx512bw amx_tile"), {}, AVX512),  # AMX without its bfloat16
    (ZEN5, {"TF_ENABLE_ONEDNN_OPTS": "0"}, OneDNN()),     # oneDNN off: none of its kernels
    (ZEN5, {"TF_ENABLE_ONEDNN_OPTS": "1"}, BF16),
    (None, {}, OneDNN()),                                 # no /proc/cpuinfo (macOS, Windows)
])
def test_onednn_cpu_reads_the_cpu_flags(tmp_path, cpuinfo, environ, expected):
    path = tmp_path / "cpuinfo"
    if cpuinfo is not None:
        path.write_text(cpuinfo)
    assert onednn_cpu(path, environ) == expected


@pytest.mark.parametrize("flags", ["avx512_bf16", "amx_bf16 amx_tile", "avx512_bf16 amx_bf16"])
def test_auto_trains_in_bfloat16_on_a_cpu_whose_flags_name_it(tmp_path, flags):
    # AVX512_BF16 (the Zen 4 and 5 EPYCs), AMX's tiles, or both (round 55's Xeon).
    path = tmp_path / "cpuinfo"
    path.write_text(XEON.replace("avx512bw", f"avx512bw {flags}"))
    cpu = onednn_cpu(path, {})
    assert choose(switches(**AUTO, deterministic=False), 0, 1, cpu=cpu) == (
        False, "mixed_bfloat16", "one")


@pytest.mark.parametrize("name", ["chollet", "compact"])
def test_a_bfloat16_run_trains_saves_and_samples_from_a_float32_average(tmp_path, name):
    # The engine of one CPU under train.mixed_precision: on, or auto where the CPU computes
    # bfloat16, built as resolve_engine builds it, with the recipe's late batch.
    model, train = recipe(name, late=True, train__iterations=3)
    images = random_images(32)
    result = training.fit(images, model, train, tmp_path / "checkpoints", "d",
                          engine=Engine(tf.distribute.get_strategy(), False, "mixed_bfloat16"))
    gan = result.gan
    assert len(result.log_rows) == 3 and np.isfinite(
        [[row["d_loss"], row["g_loss"]] for row in result.log_rows]).all()
    assert gan.generator.layers[1].dtype_policy.compute_dtype == "bfloat16"
    assert gan.discriminator.layers[1].dtype_policy.compute_dtype == "bfloat16"
    # bfloat16 has float32's range, so nothing scales the loss.
    assert not isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
    # The average, where the recipe keeps one (not the book's), samples in float32.
    sampler_policies = {layer.dtype_policy.name for layer in gan.sampler.layers}
    assert sampler_policies == ({"float32"} if train.ema else {"mixed_bfloat16", "float32"})
    train_outputs.save_outputs(result, tmp_path / "models")
    recipe_json = train_outputs.read_recipe(tmp_path / "models")
    assert recipe_json["engine"]["precision"] == "mixed_bfloat16"
    generator = load_generator(tmp_path / "models" / "generator.keras")
    samples, _ = draw_samples(generator, 5, 0, 5, train.pixel_range)
    assert samples.shape == (5, 32, 32, 3) and samples.max() > samples.min()


# Each engine that auto picks on some machine is built as that machine would build it (float16
# and XLA both run on a CPU; two logical CPUs stand in for two GPUs), then trains a few steps,
# saves its outputs, reloads the generator and samples, the recipe's late batch included (a
# step of its own, compiled by XLA where XLA is on). The engine of one CPU with AVX-512 (no
# XLA, float32) is the one every other training test here runs, and that of a CPU split in two
# (float32 on two devices) the one tests/test_distribute.py trains, so both are left out; the
# compiled float32 step of a CPU without AVX-512 runs in tests/test_regularisers.py, and the
# bfloat16 step of a CPU that computes it in the test above.
CODE = """
from tiny import random_images, recipe
from dcgan import train_outputs, training
from dcgan.engine import Engine
from dcgan.sampling import draw_samples, load_generator
images = random_images(32)
results = {{}}
for name in ("chollet", "compact"):
    for machine, jit, devices in (("one GPU", True, 1), ("several GPUs", False, 2)):
        model, train = recipe(name, late=True, train__iterations=3, train__deterministic=False)
        strategy = mirrored if devices == 2 else tf.distribute.get_strategy()
        folder = {folder!r} + f"/{{name}}-{{machine}}"
        result = training.fit(images, model, train, folder + "/checkpoints", "d",
                              engine=Engine(strategy, jit, "mixed_float16"))
        train_outputs.save_outputs(result, folder + "/models")
        generator = load_generator(folder + "/models/generator.keras")
        samples, _ = draw_samples(generator, 5, 0, 5, train.pixel_range)
        results[f"{{name}}, {{machine}}"] = {{
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
