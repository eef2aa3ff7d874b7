"""The params loader: typed sections, presets, and one clear message per bad value."""

import pytest

from dcgan.errors import ParamsError
from dcgan.params import PRESETS, load_recipe, load_section, parse_section, resolve_preset
from tiny import TINY, tiny_params, write_params


def test_committed_params_file_loads_every_section():
    for section in ("prepare", "model", "train", "sample", "evaluate"):
        assert load_section("params.yaml", section) is not None
    model, train = load_recipe("params.yaml")
    assert model.preset == "compact"
    assert None not in (train.iterations, train.batch_size, model.latent_dim)


def test_sections_are_frozen():
    params = parse_section("sample", TINY["sample"])
    with pytest.raises(Exception):
        params.seed = 3


def test_chollet_preset_is_the_books_recipe():
    model, train = resolve_preset(
        parse_section("model", dict(TINY["model"], latent_dim=None, width=None)),
        parse_section("train", dict(TINY["train"], iterations=None, batch_size=None)))
    assert (model.latent_dim, model.width, model.dropout) == (32, 128, 0.4)
    assert (train.iterations, train.batch_size, train.optimizer) == (10000, 20, "rmsprop")
    assert (train.d_learning_rate, train.g_learning_rate, train.clipvalue) == (0.0008, 0.0004, 1.0)
    assert (train.label_noise, train.loss, train.shuffle) == (0.05, "book", False)
    assert (train.ema, train.augment_policies) == (0.0, ())


def test_explicit_value_overrides_preset():
    model, train = resolve_preset(parse_section("model", TINY["model"]),
                                  parse_section("train", dict(TINY["train"], ema=0.5)))
    assert train.ema == 0.5 and model.width == 4
    assert PRESETS["chollet"]["train"]["ema"] == 0.0


@pytest.mark.parametrize("section, key, value, words", [
    ("train", "d_learning_rate", -0.1, "train.d_learning_rate: expected a number > 0.0"),
    ("train", "iterations", 0, "train.iterations: expected an integer >= 1"),
    ("train", "iterations", 2.5, "train.iterations: expected an integer"),
    ("train", "deterministic", "yes", "train.deterministic: expected true or false"),
    ("model", "preset", "stylegan", "model.preset: expected one of 'compact', 'chollet'"),
    ("train", "loss", "wgan", "train.loss: expected one of"),
    ("train", "augment", "color,blur", "train.augment: expected 'none' or a comma list"),
    ("prepare", "md5", "abc", "prepare.md5: expected a string (32 lowercase hex digits)"),
    ("prepare", "class_name", "toad", "prepare.class_name: expected one of 'airplane'"),
    ("prepare", "holdout_fraction", 1.0, "prepare.holdout_fraction: expected a number"),
    ("sample", "num_samples", 0, "sample.num_samples"),
    ("evaluate", "inception", "maybe", "evaluate.inception: expected one of 'auto'"),
])
def test_bad_value_is_rejected_with_the_key_named(section, key, value, words):
    with pytest.raises(ParamsError) as error:
        parse_section(section, dict(TINY[section], **{key: value}))
    assert str(error.value).startswith(words)


def test_unknown_and_missing_keys_are_rejected(tmp_path):
    with pytest.raises(ParamsError, match=r"^train\.learning_rate: unknown key; allowed keys"):
        parse_section("train", dict(TINY["train"], learning_rate=0.1))
    raw = dict(TINY["train"])
    del raw["seed"]
    with pytest.raises(ParamsError, match=r"^train\.seed: missing key"):
        parse_section("train", raw)
    params = tiny_params()
    del params["sample"]
    with pytest.raises(ParamsError, match=r"^sample: missing section"):
        load_section(write_params(tmp_path / "params.yaml", params), "sample")


def test_images_source_needs_a_folder():
    with pytest.raises(ParamsError, match=r"^prepare\.images_dir: required"):
        parse_section("prepare", dict(TINY["prepare"], source="images"))


def test_unreadable_params_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_section(bad, "train")
    with pytest.raises(ParamsError, match="params file not found"):
        load_section(tmp_path / "missing.yaml", "train")
