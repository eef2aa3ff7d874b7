"""The params loader and the recipes: typed sections, every value explicit, clear messages."""

import pytest
import yaml

from dcgan.errors import ParamsError
from dcgan.params import (
    apply_setting,
    load_sections,
    parse_section,
    read_params_file,
    recipe_keys,
)
from dcgan.recipes import exp_run_command, read_recipe, recipe_path
from tiny import TINY, tiny_params, write_params

SECTIONS = ("prepare", "model", "train", "sample", "evaluate")


def test_committed_params_file_states_every_model_and_train_value():
    raw = read_params_file("params.yaml")
    for section in ("model", "train"):
        nulls = [key for key, value in raw[section].items() if value is None]
        assert not nulls, f"{section} keys left null: {nulls}"
    prepare, model, train, sample, evaluate = load_sections("params.yaml", *SECTIONS)
    # What runs is what the file says, value for value: the loader fills in nothing.
    for section, parsed in (("model", model), ("train", train)):
        for key, value in raw[section].items():
            ran = getattr(parsed, key)
            assert (list(ran) if isinstance(ran, tuple) else ran) == value, f"{section}.{key}"
    assert model.architecture == "compact"


def test_params_file_runs_the_default_recipe_file():
    # The default recipe lives in two places on purpose: params.yaml runs it, recipes/ names
    # it. This keeps them from drifting apart.
    raw = read_params_file("params.yaml")
    compact = read_params_file("recipes/compact.yaml")
    for section in ("model", "train"):
        assert {key: raw[section][key] for key in recipe_keys(section)} == compact[section]


def test_chollet_recipe_is_the_books():
    recipe = read_recipe(recipe_path("chollet"), "params.yaml")
    model, train = (parse_section(s, {**TINY[s], **recipe[s]}) for s in ("model", "train"))
    assert (model.architecture, model.latent_dim, model.width, model.dropout) == (
        "chollet", 32, 128, 0.4)
    assert (train.iterations, train.batch_size, train.optimizer) == (10000, 20, "keras2_rmsprop")
    assert (train.d_learning_rate, train.g_learning_rate, train.clipvalue) == (0.0008, 0.0004, 1.0)
    assert (train.learning_rate_decay, train.label_noise, train.loss) == (1e-8, 0.05, "book")
    assert (train.shuffle, train.mirror, train.pixel_range, train.ema, train.augment) == (
        False, False, "unit", 0.0, ())
    assert train.mixed_precision == "off"  # float32 on any machine, as the book ran


def test_recipe_becomes_one_dvc_override_per_key():
    recipe = read_recipe(recipe_path("compact"), "params.yaml")
    command = exp_run_command(recipe, ["--queue"])
    assert command[:3] == ["dvc", "exp", "run"] and command[-1] == "--queue"
    overrides = command[4:-1:2]
    assert len(overrides) == len(recipe_keys("model")) + len(recipe_keys("train"))
    # YAML flow style without spaces: a bare comma would make dvc sweep over the values.
    assert f"train.augment=[{','.join(recipe['train']['augment'])}]" in overrides
    assert "model.spectral_norm=false" in overrides
    assert f"train.d_learning_rate={recipe['train']['d_learning_rate']}" in overrides


@pytest.mark.parametrize("change, words", [
    (lambda r: r["train"].pop("ema"), "train.ema: missing key"),
    (lambda r: r["train"].update(seed=3), "train.seed: not a recipe key"),
    (lambda r: r["model"].update(width=0), "model.width: expected an integer >= 1"),
    (lambda r: r.update(sample={}), "unknown section 'sample'"),
])
def test_bad_recipe_files_are_named_with_the_key(tmp_path, change, words):
    recipe = yaml.safe_load(open("recipes/compact.yaml"))
    change(recipe)
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(ParamsError, match=words) as error:
        read_recipe(path, "params.yaml")
    assert str(error.value).startswith(str(path))


def test_unknown_recipe_lists_the_known_ones():
    with pytest.raises(ParamsError, match=r"recipe not found; the recipes in recipes/ are: "
                                          r"chollet, compact"):
        read_recipe(recipe_path("stylegan"), "params.yaml")


def test_sections_are_frozen():
    params = parse_section("sample", TINY["sample"])
    with pytest.raises(Exception):
        params.seed = 3


@pytest.mark.parametrize("section, key, value, words", [
    ("train", "d_learning_rate", -0.1, "train.d_learning_rate: expected a number > 0.0"),
    ("train", "iterations", 0, "train.iterations: expected an integer >= 1"),
    ("train", "iterations", 2.5, "train.iterations: expected an integer"),
    ("train", "iterations", None, "train.iterations: expected an integer >= 1, found null"),
    ("train", "deterministic", "yes", "train.deterministic: expected true or false"),
    ("train", "beta_1", 1.0, "train.beta_1: expected a number >= 0.0 and < 1.0 (adam only)"),
    ("train", "beta_2", 1.0, "train.beta_2: expected a number >= 0.0 and < 1.0 (adam only)"),
    ("model", "architecture", "stylegan", "model.architecture: expected one of 'compact'"),
    ("model", "g_top_multiplier", 0, "model.g_top_multiplier: expected an integer >= 1"),
    ("model", "g_top_convs", -1, "model.g_top_convs: expected an integer >= 0"),
    ("model", "d_top_convs", -1, "model.d_top_convs: expected an integer >= 0"),
    ("model", "minibatch_std_group", -1, "model.minibatch_std_group: expected an integer >= 0"),
    ("model", "upsample", "bicubic", "model.upsample: expected one of 'nearest', 'bilinear'"),
    ("model", "noise_inputs", "yes", "model.noise_inputs: expected true or false"),
    ("model", "g_self_modulation", 12,
     "model.g_self_modulation: expected one of 0, 32, 16, 8, 4, found 12"),
    ("model", "g_self_modulation", "top",
     "model.g_self_modulation: expected one of 0, 32, 16, 8, 4, found 'top'"),
    ("train", "loss", "wgan", "train.loss: expected one of"),
    ("train", "augment", ["color", "blur"], "train.augment: expected a list of 'color'"),
    ("train", "augment", "color", "train.augment: expected a list of 'color'"),
    ("train", "augment", ["color", "color"], "train.augment: expected a list of .* at most once"),
    ("train", "learning_rate_ramp_down", 1.5,
     "train.learning_rate_ramp_down: expected a number >= 0.0 and <= 1.0 (0 turns the ramp"),
    ("train", "r1_gamma_growth", -1.0, "train.r1_gamma_growth: expected a number >= 0.0"),
    ("train", "r2_gamma", -0.5, "train.r2_gamma: expected a number >= 0.0"),
    ("train", "r1_fine_weight", -1.0, "train.r1_fine_weight: expected a number >= 0.0"),
    ("train", "augment_color", 2.5, "train.augment_color: expected a number >= 0.0 and <= 2.0"),
    ("train", "augment_cutout", 1.5, "train.augment_cutout: expected a number >= 0.0 and <= 1.0"),
    ("train", "augment_probability", 1.5,
     "train.augment_probability: expected a number >= 0.0 and <= 1.0"),
    ("train", "augment_target", -0.1, "train.augment_target: expected a number >= 0.0 and <= 1.0"),
    ("train", "augment_ramp", 0, "train.augment_ramp: expected an integer >= 1"),
    ("train", "augment_fade", 1.5, "train.augment_fade: expected a number >= 0.0 and <= 1.0"),
    ("train", "late_share", 1.5, "train.late_share: expected a number >= 0.0 and <= 1.0"),
    ("train", "late_batch_size", -1, "train.late_batch_size: expected an integer >= 0"),
    ("prepare", "md5", "abc", "prepare.md5: expected a string (32 lowercase hex digits)"),
    ("prepare", "class_name", "toad", "prepare.class_name: expected one of 'airplane'"),
    ("prepare", "holdout_fraction", 1.0, "prepare.holdout_fraction: expected a number"),
    ("sample", "num_samples", 0, "sample.num_samples"),
    ("evaluate", "inception", "maybe", "evaluate.inception: expected one of 'auto'"),
])
def test_bad_value_is_rejected_with_the_key_named(section, key, value, words):
    with pytest.raises(ParamsError, match="^" + words.replace("(", r"\(").replace(")", r"\)")):
        parse_section(section, dict(tiny_params()[section], **{key: value}))


@pytest.mark.parametrize("overrides, words", [
    ({"model__spectral_norm": True},
     "model.spectral_norm: the chollet discriminator has no spectral normalisation; set it to "
     "false or use model.architecture compact or resnet"),
    ({"model__g_top_multiplier": 2}, "model.g_top_multiplier: the chollet generator has no"),
    ({"model__g_top_convs": 1}, "model.g_top_convs: the chollet generator has no"),
    ({"model__architecture": "resnet", "model__g_top_convs": 1},
     "model.g_top_convs: the resnet generator has no"),
    ({"model__d_top_convs": 1}, "model.d_top_convs: the chollet discriminator has no"),
    ({"model__architecture": "resnet", "model__d_top_convs": 1},
     "model.d_top_convs: the resnet discriminator has no"),
    ({"model__minibatch_std_group": 4},
     "model.minibatch_std_group: the chollet discriminator has no minibatch spread; set it "
     "to 0 or use model.architecture compact or resnet"),
    ({"model__upsample": "bilinear"},
     "model.upsample: the chollet generator has transposed convolutions, not upsampling; set "
     "it to nearest or use model.architecture compact or resnet"),
    ({"model__architecture": "resnet", "model__upsample": "subpixel_top"},
     "model.upsample: the resnet generator's blocks interpolate, and subpixel_top is the "
     "compact generator's; set it to nearest, bilinear or bilinear_top or use "
     "model.architecture compact"),
    ({"model__noise_inputs": True},
     "model.noise_inputs: the chollet generator has no noise inputs"),
    ({"model__g_output": "linear"},
     "model.g_output: the chollet generator has a tanh output only; set it to tanh"),
    ({"model__g_skip": True}, "model.g_skip: the chollet generator has no skip connections"),
    ({"model__architecture": "resnet", "model__g_skip": True},
     "model.g_skip: the resnet generator has no skip connections"),
    ({"model__g_self_modulation": 32},
     "model.g_self_modulation: the chollet generator has no self-modulation; set it to 0"),
    ({"model__architecture": "resnet", "model__d_blur": True},
     "model.d_blur: the resnet discriminator has no blur before its strides"),
    ({"model__d_local_head": True}, "model.d_local_head: the chollet discriminator has no local"),
    ({"model__d_local_loss": "patches"},
     "model.d_local_loss: patches judges the local head's scores, and model.d_local_head is "
     "false"),
    ({"train__loss": "hinge"}, "train.label_noise: must be 0 with train.loss 'hinge'"),
    ({"train__loss": "relativistic"},
     "train.label_noise: must be 0 with train.loss 'relativistic'"),
    ({"train__augment": ["cutout"], "train__pixel_range": "unit"}, "train.augment: DiffAugment"),
    ({"train__consistency_weight": 1.0},
     r"train.consistency_weight: compares two augmentations of each image, so it needs "
     r"train.augment"),
    ({"train__augment_probability": 0.5},
     r"train.augment_probability, train.augment_target, train.augment_fade: set how often "
     r"train.augment's"),
    ({"train__augment_target": 0.6},
     r"train.augment_probability, train.augment_target, train.augment_fade: set how often "
     r"train.augment's"),
    ({"train__augment_fade": 0.25},
     r"train.augment_probability, train.augment_target, train.augment_fade: set how often "
     r"train.augment's"),
    ({"train__augment": ["cutout"], "train__augment_target": 0.6, "train__augment_fade": 0.25},
     r"train.augment_fade: sets the chance by the step, where ADA \(train.augment_target\) "
     r"steers it; set one of them to 0"),
    ({"train__augment": ["cutout"], "train__loss": "relativistic", "train__label_noise": 0.0,
      "train__augment_target": 0.6},
     r"train.augment_target: reads the sign of the discriminator's outputs on reals"),
    ({"train__loss": "relativistic", "train__label_noise": 0.0, "train__g_top_k": 0.5},
     r"train.g_top_k: ranks each fake by its own score, where the relativistic loss judges it "
     r"against a real image"),
    ({"train__late_share": 0.25}, r"train.late_share, train.late_batch_size: the run's last "
                                  r"share trains at the late batch size, so set both"),
    ({"train__late_batch_size": 64}, r"train.late_share, train.late_batch_size: the run's "
                                     r"last share trains at the late batch size"),
    ({"train__r1_fine_weight": 0.0, "train__r1_gamma": 0.0, "train__r2_gamma": 0.0},
     r"train.r1_coarse_weight, train.r1_fine_weight: weigh the R1 and R2 penalties, and both "
     r"are off"),
    ({"train__r1_fine_weight": 0.0, "train__r1_coarse_weight": 0.0, "train__r1_gamma": 0.02},
     r"train.r1_coarse_weight, train.r1_fine_weight: both 0 leave R1 and R2 nothing"),
    ({"train__augment_color": 0.5},
     r"train.augment_color, train.augment_saturation: scale the color policy's changes, and "
     r"train.augment has no 'color'"),
    ({"train__augment": ["translation", "cutout"], "train__augment_saturation": 0.0},
     r"train.augment_color, train.augment_saturation: scale the color policy's changes"),
    ({"train__ema_bn_batches": 4}, r"train.ema_bn_batches: refreshes the moving average's "
                                   r"statistics, so it needs train.ema > 0"),
])
def test_contradictory_values_are_rejected_before_any_work(tmp_path, overrides, words):
    path = write_params(tmp_path / "params.yaml", tiny_params(**overrides))
    with pytest.raises(ParamsError, match="^" + words):
        load_sections(path, "model", "train")


def test_unknown_and_missing_keys_are_rejected(tmp_path):
    with pytest.raises(ParamsError, match=r"^train\.learning_rate: unknown key; allowed keys"):
        parse_section("train", dict(tiny_params()["train"], learning_rate=0.1))
    raw = dict(tiny_params()["train"])
    del raw["seed"]
    with pytest.raises(ParamsError, match=r"^train\.seed: missing key"):
        parse_section("train", raw)
    params = tiny_params()
    del params["sample"]
    with pytest.raises(ParamsError, match=r"^sample: missing section"):
        load_sections(write_params(tmp_path / "params.yaml", params), "sample")


def test_images_source_needs_a_folder():
    with pytest.raises(ParamsError, match=r"^prepare\.images_dir: required"):
        parse_section("prepare", dict(TINY["prepare"], source="images"))


def test_unreadable_params_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_sections(bad, "train")
    with pytest.raises(ParamsError, match="params file not found"):
        load_sections(tmp_path / "missing.yaml", "train")


def test_the_late_share_sets_each_steps_batch_and_the_images_seen():
    train = parse_section("train", dict(tiny_params()["train"], iterations=8, batch_size=8,
                                        late_share=0.25, late_batch_size=24))
    assert train.late_start == 6
    assert [train.batch_size_at(step) for step in range(8)] == [8] * 6 + [24] * 2
    assert train.batch_sizes == {"batch_size": 8, "late_batch_size": 24}
    assert train.last_batch_size == 24
    assert [train.images_seen(steps) for steps in (0, 5, 6, 7, 8)] == [0, 40, 48, 72, 96]
    plain = parse_section("train", dict(tiny_params()["train"], iterations=8, batch_size=8))
    assert plain.late_start == 8 and plain.batch_sizes == {"batch_size": 8}
    assert plain.last_batch_size == 8 and plain.images_seen(8) == 64


def test_apply_setting_reads_values_as_dvc_exp_run_set_writes_them():
    params = {"train": {"batch_size": 32, "jit_compile": "auto", "augment": ["color"]},
              "model": {"width": 32}}
    apply_setting(params, "train.batch_size=64")
    apply_setting(params, "train.jit_compile=off")      # YAML 1.2: a string, not False
    apply_setting(params, "train.augment=[color, cutout]")
    assert params == {"train": {"batch_size": 64, "jit_compile": "off",
                                "augment": ["color", "cutout"]},
                      "model": {"width": 32}}


@pytest.mark.parametrize("setting", ["train.batch_size", "train.batchsize=64",
                                     "sample.seed=1", "batch_size=64", "train.augment=[color"])
def test_apply_setting_refuses_a_key_the_params_lack_or_a_bad_value(setting):
    params = {"train": {"batch_size": 32, "augment": ["color"]}}
    with pytest.raises(ParamsError, match="SECTION.KEY=VALUE|not a valid YAML value"):
        apply_setting(params, setting)
    assert params == {"train": {"batch_size": 32, "augment": ["color"]}}
