"""End to end: `dvc repro` of the whole pipeline in a fresh git repository, on tiny params."""

import json
import sys
import time

import numpy as np
import pytest
import yaml

from project import REPO, commit, create_project, project_params, sh, tiny_archive
from tiny import write_params

ARTIFACTS = [
    "data/prepared/train.npz", "data/prepared/test.npz",
    "models/generator.keras", "models/discriminator.keras", "models/train_log.csv",
    "models/recipe.json", "data/samples/samples.npz",
    "reports/metrics.json", "reports/losses.csv", "reports/losses.png", "reports/samples.png",
    "reports/real.png", "reports/progress.png", "reports/nearest.png", "reports/report.md",
]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A git + DVC copy of the project whose params point at a tiny file:// archive."""
    root = tmp_path_factory.mktemp("project")
    archive = tiny_archive(root.parent / "archive")
    create_project(root, project_params(archive))
    with pytest.MonkeyPatch.context() as patch:
        # The download lands in a Keras cache of the test's own, never in ~/.keras.
        patch.setenv("KERAS_HOME", str(root.parent / "keras_home"))
        sh(root, "dvc", "repro")
        commit(root, "tiny run")
        yield root, archive


def test_repro_writes_every_artifact(project):
    root, archive = project
    for artifact in ARTIFACTS:
        assert (root / artifact).is_file(), artifact
    with np.load(root / "data/prepared/train.npz") as prepared:
        assert np.array_equal(prepared["images"], archive["train"]["frog"])
    with np.load(root / "data/samples/samples.npz") as samples:
        assert samples["images"].shape == (24, 32, 32, 3)


def test_metrics_show_and_params_diff(project):
    root, _ = project
    shown = json.loads(sh(root, "dvc", "metrics", "show", "--json"))
    scores = next(iter(shown.values()))["data"]["reports/metrics.json"]["data"]
    assert scores["num_samples"] == 24 and "floor" in scores
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["sample"]["num_samples"] = 12
    write_params(root / "params.yaml", params)
    diff = json.loads(sh(root, "dvc", "params", "diff", "--json"))
    change = diff["params.yaml"]["sample.num_samples"]
    assert (change["old"], change["new"]) == (24, 12)
    status = sh(root, "dvc", "status", "--json")
    assert "sample" in json.loads(status) and "train" not in json.loads(status)
    sh(root, "git", "checkout", "params.yaml")


def test_queue_runs_each_experiment_with_its_own_params_code_and_recipe(project):
    root, _ = project
    # A code change and a param change queued, then the code undone in the workspace: the
    # experiment must run the code of its own commit, which DVC hashed, not the workspace's or
    # an installed copy's, with its own params.
    sampling = root / "dcgan" / "sampling.py"
    original = sampling.read_text()
    sampling.write_text(original.replace(
        "    return pixels.to_uint8(output, pixel_range)",
        "    return np.zeros_like(pixels.to_uint8(output, pixel_range))"))
    sh(root, "dvc", "exp", "run", "--queue", "-n", "blank-samples",
       "-S", "train.g_learning_rate=0.001")
    sampling.write_text(original)
    # A recipe of one's own, queued with the one command that applies a recipe.
    recipe = yaml.safe_load((REPO / "recipes" / "compact.yaml").read_text())
    recipe["model"].update(latent_dim=6, width=4)
    recipe["train"].update(iterations=4, batch_size=4, late_batch_size=8, d_learning_rate=0.0005)
    (root / "mine.yaml").write_text(yaml.safe_dump(recipe))
    sh(root, sys.executable, "-m", "dcgan.recipes", "mine.yaml", "--queue", "-n", "mine")
    try:
        sh(root, "dvc", "queue", "start", "--jobs", "1", capture=False)
        # A guard against a hung queue, not a timing: two experiments of four tiny steps.
        guard = 600
        deadline = time.monotonic() + guard
        while time.monotonic() < deadline:
            status = sh(root, "dvc", "queue", "status")
            if "Queued" not in status and "Running" not in status:
                break
            time.sleep(2)
        else:
            pytest.fail(f"the queue had not finished after {guard} s:\n{status}")
        failed = [line.split()[0] for line in status.splitlines() if "Failed" in line]
        assert not failed, sh(root, "dvc", "queue", "logs", failed[0])
    finally:
        sh(root, "dvc", "queue", "stop", "--kill")
    shown = json.loads(sh(root, "dvc", "exp", "show", "--json"))
    experiments = {}
    for baseline in shown:
        for experiment in baseline.get("experiments") or []:
            for revision in experiment["revs"]:
                data = revision["data"]
                params = data["params"]["params.yaml"]["data"]
                metrics = data["metrics"]["reports/metrics.json"]["data"]
                experiments[revision["name"]] = (params, metrics)
    assert {"blank-samples", "mine"} <= set(experiments)
    assert all(m["num_samples"] == 24 and "swd_32" in m for _, m in experiments.values())
    blank = experiments["blank-samples"]
    assert blank[0]["train"]["g_learning_rate"] == 0.001
    # Blank samples are all alike: the queued code ran. The workspace's code would not do it.
    assert blank[1]["diversity"] == 0
    assert experiments["mine"][1]["diversity"] > 0
    # Every value of the recipe is what the experiment's params.yaml shows and ran with.
    params = experiments["mine"][0]
    assert {key: params["model"][key] for key in recipe["model"]} == recipe["model"]
    assert {key: params["train"][key] for key in recipe["train"]} == recipe["train"]
    assert experiments["mine"][1]["num_samples"] == 24


def test_editing_any_file_a_stage_runs_marks_that_stage_changed(project):
    root, _ = project
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    code = sorted({dep for stage in stages.values() for dep in stage["deps"]
                   if dep.endswith(".py")})
    originals = {path: (root / path).read_text() for path in code}
    try:
        for path in code:
            (root / path).write_text(originals[path] + "\n# edited\n")
        status = json.loads(sh(root, "dvc", "status", "--json"))
    finally:
        for path, text in originals.items():
            (root / path).write_text(text)
    for name, stage in stages.items():
        changed = {dep for entry in status[name] if "changed deps" in entry
                   for dep in entry["changed deps"]}
        assert {dep for dep in stage["deps"] if dep.endswith(".py")} <= changed, name
    assert "up to date" in sh(root, "dvc", "status").lower()


def test_push_and_pull_through_a_local_remote(project, tmp_path):
    root, _ = project
    remote = tmp_path / "remote"
    sh(root, "dvc", "remote", "add", "-d", "shared", str(remote))
    sh(root, "git", "commit", "-qam", "add a remote")
    sh(root, "dvc", "push")
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(root), str(clone))
    assert not (clone / "models" / "generator.keras").exists()
    assert (clone / "reports" / "metrics.json").is_file()  # reports/ travels with git
    sh(clone, "dvc", "pull")
    for artifact in ("data/prepared/train.npz", "models/generator.keras",
                     "data/samples/samples.npz"):
        assert (clone / artifact).read_bytes() == (root / artifact).read_bytes()
    assert "up to date" in sh(clone, "dvc", "status").lower()


def test_plots_show_draws_every_plot_of_dvc_yaml_from_what_evaluate_wrote(project):
    root, _ = project
    plots = yaml.safe_load((root / "dvc.yaml").read_text())["plots"]
    shown = json.loads(sh(root, "dvc", "plots", "show", "--json"))
    assert not shown.get("errors"), shown["errors"]
    for plot in plots:
        (title, spec), = plot.items()
        (_, columns), = spec["y"].items()
        (drawn,) = shown["data"][title]
        values = drawn["content"]["data"]["values"]
        assert values and all(row[column] != "" for row in values for column in columns), title
