"""The evaluate stage: grids, metrics beside their floors, a report linking what exists."""

import json
import re

import numpy as np
import pytest

from dcgan import grids, metrics
from dcgan.artifacts import save_npz
from dcgan.cli import run
from dcgan.evaluation import METRICS, evaluate
from dcgan.params import parse_section
from dcgan.report import format_number, markdown
from stages import evaluate as evaluate_stage
from tiny import TINY, tiny_params, write_params

LOG = ("step,d_loss,g_loss,d_real_accuracy,d_fake_accuracy,seconds\n"
       "1,0.7,0.69,0.5,0.5,0.1\n2,0.6,0.8,0.6,0.7,0.2\n")


def images(count, seed):
    return np.random.default_rng(seed).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)


@pytest.fixture
def workspace(tmp_path):
    """Inputs as the earlier stages leave them: prepared data, samples, a trained-model folder."""
    save_npz(tmp_path / "prepared" / "train.npz", images=images(40, 0))
    save_npz(tmp_path / "prepared" / "test.npz", images=images(20, 1))
    save_npz(tmp_path / "samples.npz", images=images(30, 2))
    models = tmp_path / "models"
    (models / "snapshots").mkdir(parents=True)
    (models / "train_log.csv").write_text(LOG)
    for step in (1, 2):
        grids.save_png(models / "snapshots" / f"step_{step:08d}.png",
                       np.concatenate(list(images(3, step)), axis=1), scale=1)
    params = tiny_params()
    recipe = {"model": params["model"], "train": params["train"],
              "engine": {"devices": 1, "jit_compile": False, "precision": "mixed_bfloat16"},
              "seconds": 1.5}
    (models / "recipe.json").write_text(json.dumps(recipe))
    write_params(tmp_path / "params.yaml", params)
    return tmp_path


def run_evaluate(root, samples=None):
    return run(evaluate_stage.main, [
        "--params", str(root / "params.yaml"), "--samples", str(samples or root / "samples.npz"),
        "--prepared", str(root / "prepared"), "--models", str(root / "models"),
        "--out", str(root / "reports")])


def test_image_grid_size_and_placement():
    tiles = np.stack([np.full((32, 32, 3), value, np.uint8) for value in (10, 20, 30)])
    grid = grids.image_grid(tiles, rows=2, cols=2, pad=2)
    assert grid.shape == (2 * 34 + 2, 2 * 34 + 2, 3)
    assert grid[2, 2, 0] == 10 and grid[2, 36, 0] == 20 and grid[36, 2, 0] == 30
    assert grid[36, 36, 0] == 255  # the empty cell stays background
    with pytest.raises(ValueError):
        grids.image_grid(tiles, rows=1, cols=2)


def test_progress_grid_rows_are_latents_and_columns_snapshots():
    snapshots = {step: np.full((3, 32, 32, 3), step, np.uint8) for step in range(1, 16)}
    grid = grids.progress_grid(snapshots, max_columns=5)
    assert grid.shape == (3 * 34 + 2, 5 * 34 + 2, 3)
    assert [grid[2, 2 + 34 * c, 0] for c in range(5)] == [1, 5, 8, 11, 15]


def test_stage_writes_every_report_with_floors(workspace):
    assert run_evaluate(workspace) == 0
    reports = workspace / "reports"
    assert {p.name for p in reports.iterdir()} == {
        "losses.csv", "losses.png", "samples.png", "real.png", "progress.png", "nearest.png",
        "metrics.json", "report.md"}
    scores = json.loads((reports / "metrics.json").read_text())
    for key in METRICS:
        assert key in scores and key in scores["floor"]
    assert scores["fid"] is None and scores["inception"].startswith("off")
    assert scores["num_samples"] == 30 and scores["g_loss"] == 0.8
    assert "augment_probability" not in scores
    assert scores["swd_32"] > 0 and scores["floor"]["swd_32"] > 0
    # 30 samples in draws of 8: the mean over three draws, with its standard error.
    assert scores["swd_draws"] == 3 and scores["swd_draw_size"] == 8
    assert scores["swd_16_error"] > 0 and scores["floor"]["swd_16_error"] > 0
    report = (reports / "report.md").read_text()
    assert f"{scores['swd_16']:.4g} ± " in report
    recipe = json.loads((workspace / "models" / "recipe.json").read_text())
    # The regularisers and the augmentation chance are part of what was run.
    for key in ("r1_gamma", "r1_every", "lecam_weight", "augment_probability"):
        assert f"| train.{key} | {format_number(recipe['train'][key])} |" in report
    # So is the precision the engine trained in, which changes the run.
    assert "s on 1 device(s), in mixed_bfloat16 |" in report
    # samples.png holds a 4x4 grid of 32-pixel images, enlarged twice.
    from PIL import Image
    assert Image.open(reports / "samples.png").size == (2 * (4 * 34 + 2),) * 2
    assert (reports / "losses.csv").read_text().splitlines()[0] == LOG.splitlines()[0]


def test_the_augmentation_chance_reaches_the_losses_and_the_metrics(workspace):
    log = LOG.splitlines()
    (workspace / "models" / "train_log.csv").write_text(
        f"{log[0]},augment_probability\n{log[1]},0.25\n{log[2]},0.5\n")
    assert run_evaluate(workspace) == 0
    reports = workspace / "reports"
    assert (reports / "losses.csv").read_text().splitlines()[0].endswith(",augment_probability")
    assert json.loads((reports / "metrics.json").read_text())["augment_probability"] == 0.5


def test_report_links_only_files_that_exist(workspace):
    assert run_evaluate(workspace) == 0
    reports = workspace / "reports"
    text = (reports / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert set(links) == {"samples.png", "real.png", "progress.png", "nearest.png", "losses.png"}
    assert all((reports / link).is_file() for link in links)
    (reports / "progress.png").unlink()
    recipe = json.loads((workspace / "models" / "recipe.json").read_text())
    scores = json.loads((reports / "metrics.json").read_text())
    assert "progress.png" not in markdown(recipe, scores, reports)


@pytest.mark.parametrize("breakage, message", [
    ("no_log", "train log not found"),
    ("float_samples", "expected uint8 images of shape (N, 32, 32, 3), found float32"),
    ("one_sample", "the samples holds 1 images; the metrics need at least 2"),
    ("no_samples", "file not found"),
])
def test_bad_inputs_are_one_clear_line_and_write_nothing(workspace, capsys, breakage, message):
    samples = workspace / "samples.npz"
    if breakage == "no_log":
        (workspace / "models" / "train_log.csv").unlink()
    elif breakage == "float_samples":
        save_npz(samples, images=images(30, 2).astype(np.float32))
    elif breakage == "one_sample":
        save_npz(samples, images=images(1, 2))
    else:
        samples.unlink()
    assert run_evaluate(workspace) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (workspace / "reports").exists()


def test_inception_metrics_plumbing_with_untrained_network():
    # An UNTRAINED InceptionV3 (random weights): only shapes and plumbing are checked here,
    # the numbers mean nothing.
    model = metrics.load_inception(weights=None)
    params = parse_section("evaluate", TINY["evaluate"])
    scores = evaluate(images(6, 0), images(8, 1), images(5, 2), params, inception_model=model)
    for part in ("generated", "floor"):
        assert np.isfinite(scores[part]["fid"]) and scores[part]["fid"] >= 0
        assert np.isfinite(scores[part]["kid"])


def test_swd_is_the_mean_over_disjoint_draws_beside_as_many_draws_of_training_images(
        monkeypatch):
    calls = []
    original = metrics.sliced_wasserstein_distances

    def recording(image_sets, reference, **kwargs):
        results = original(image_sets, reference, **kwargs)
        calls.append((image_sets, kwargs["draws"], results))
        return results

    monkeypatch.setattr(metrics, "sliced_wasserstein_distances", recording)
    params = parse_section("evaluate", {**TINY["evaluate"], "swd_draw_size": 4})
    samples, training, reference = images(14, 0), images(40, 1), images(10, 2)
    scores = evaluate(samples, training, reference, params)
    # One call scores both, draw i of the floor as draw i of the samples.
    ((image_sets, draws, results),) = calls
    assert draws == [0, 1, 2, 0, 1, 2]
    generated_sets, floor_sets = image_sets[:3], image_sets[3:]
    generated, floor = results[:3], results[3:]
    # 14 samples give three whole draws of 4, in order and disjoint; the last 2 are left out.
    assert len(generated_sets) == 3 and scores["swd_draws"] == 3 and scores["swd_draw_size"] == 4
    np.testing.assert_array_equal(np.concatenate(generated_sets), samples[:12])
    # The floor: as many draws of as many training images, each without repeats.
    assert [len(draw) for draw in floor_sets] == [4, 4, 4]
    training_rows = {image.tobytes(): i for i, image in enumerate(training)}
    for draw in floor_sets:
        assert len({training_rows[image.tobytes()] for image in draw}) == 4
    assert not all(np.array_equal(floor_sets[0], draw) for draw in floor_sets[1:])
    for part, results in (("generated", generated), ("floor", floor)):
        for level in (16, 32):
            values = np.array([result[level] for result in results])
            assert scores[part][f"swd_{level}"] == pytest.approx(values.mean())
            assert scores[part][f"swd_{level}_error"] == pytest.approx(
                values.std(ddof=1) / np.sqrt(3))
            assert scores[part][f"swd_{level}_error"] > 0


def test_the_swd_error_holds_the_spread_of_patches_and_directions():
    # Three draws of the same images differ only in their patches and directions, and the
    # standard error shows it; the reference's patches add none, as it is cut everywhere.
    params = parse_section("evaluate", {**TINY["evaluate"], "swd_draw_size": 4})
    samples = np.concatenate([images(4, 0)] * 3)
    scores = evaluate(samples, images(40, 1), images(10, 2), params)["generated"]
    assert scores["swd_32_error"] > 0 and scores["swd_16_error"] > 0


def test_a_single_draw_has_no_standard_error():
    params = parse_section("evaluate", {**TINY["evaluate"], "swd_draw_size": 100})
    scores = evaluate(images(12, 0), images(40, 1), images(10, 2), params)
    assert scores["swd_draws"] == 1 and scores["swd_draw_size"] == 12
    assert scores["generated"]["swd_16_error"] is None and scores["floor"]["swd_16_error"] is None
    assert scores["generated"]["swd_16"] > 0
