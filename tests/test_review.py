"""The review of a change: two commits' committed results side by side, and the CI workflow."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcgan import montage, review
from dcgan.cli import run
from dcgan.evaluation import METRICS
from project import REPO, commit, create_project, project_params, sh, tiny_archive
from tiny import write_params

LINK = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A tiny project's history, each commit run by `dvc repro` unless it says otherwise.

    main: `code` (the pipeline, never run) -> `first` (its first run) -> `change`
    (sample.num_samples 24 -> 12, rerun; checked out). Branch `stale`: `change` plus a
    train.g_learning_rate edit committed without rerunning.
    """
    base = tmp_path_factory.mktemp("review")
    root = base / "project"
    archive = tiny_archive(base / "archive")
    params = project_params(archive)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERAS_HOME", str(base / "keras_home"))
        create_project(root, params)
        sh(root, "git", "symbolic-ref", "HEAD", "refs/heads/main")
        commits = {"code": commit(root, "The pipeline, not yet run")}
        sh(root, "dvc", "repro")
        commits["first"] = commit(root, "First run")
        # Sample and evaluate rerun; with fewer samples the floor, scored on as many training
        # images, moves too.
        params["sample"]["num_samples"] = 12
        write_params(root / "params.yaml", params)
        sh(root, "dvc", "repro")
        commits["change"] = commit(root, "Score fewer samples")
    sh(root, "git", "checkout", "-q", "-b", "stale")
    params["train"]["g_learning_rate"] = 0.001
    write_params(root / "params.yaml", params)
    commits["stale"] = commit(root, "Train the generator faster, not rerun")
    sh(root, "git", "checkout", "-q", "main")
    return root, commits


def committed_metrics(root, ref):
    return json.loads(sh(root, "git", "show", f"{ref}:reports/metrics.json"))


def committed_png_size(root, ref, name):
    data = subprocess.run(["git", "show", f"{ref}:reports/{name}"], cwd=root,
                          capture_output=True, check=True).stdout
    return montage.decode_png(data, name).shape[:2]


def table_rows(text, header_start):
    """The cells of each row of the markdown table whose header row starts with header_start."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def check_links(out):
    """Every image review.md links exists and is a PNG of a plausible size; returns the links."""
    links = LINK.findall((out / "review.md").read_text())
    for link in links:
        path = out / link
        assert path.is_file(), link
        assert path.stat().st_size > 2000, link
        with Image.open(path) as picture:
            assert picture.format == "PNG", link
            assert picture.width >= 100 and picture.height >= 60, (link, picture.size)
            picture.verify()
    return links


def number(value):
    return f"{value:.4g}"


def shown(scores, key):
    """A metric as the review prints it: 4 digits, and "± error" where a side has one."""
    error = scores.get(f"{key}_error")
    return number(scores[key]) + ("" if error is None else f" ± {error:.2g}")


@pytest.mark.parametrize("better, floors, floor_errors, expected", [
    # SWD 32 of one run's samples before and after the metric cut the reference at every patch.
    ("lower", (9.04, 5.84), (0.11, 0.09), "floor moved"),
    ("higher", (9.04, 5.84), (0.11, 0.09), "floor moved"),
    ("lower", (9.04, 9.10), (0.11, 0.09), "better"),   # floors 0.4 errors apart: one yardstick
    ("lower", (9.04, 5.84), (None, 0.09), "better"),   # no floor error: no way to tell
    ("near the floor", (9.04, 5.84), (0.11, 0.09), "worse"),  # judged by its own floor
])
def test_verdict_does_not_compare_values_whose_floors_moved(better, floors, floor_errors,
                                                            expected):
    old, new = (11.07, 8.84) if better != "higher" else (8.84, 11.07)
    assert review.verdict(better, old, new, *floors, 0.07, 0.09, *floor_errors) == expected


def test_make_review_sets_a_change_beside_its_base(history):
    root, commits = history
    # -o: the test's interpreter is already installed; make must not build a .venv here.
    sh(root, "make", "-o", ".venv/.installed", "review", "BASE=HEAD~1")
    out = root / "review"
    text = (out / "review.md").read_text()
    assert commits["first"][:7] in text and commits["change"][:7] in text
    assert "stale" not in text and "Left out" not in text

    assert table_rows(text, "| param |") == [["`sample.num_samples`", "24", "12"]]

    old, new = committed_metrics(root, "HEAD~1"), committed_metrics(root, "HEAD")
    rows = {row[0]: row for row in table_rows(text, "| metric |")}
    assert set(rows) == {label for label, _, _ in METRICS.values()}
    for key, (label, better, _) in METRICS.items():
        _, base, head, change, floor, direction, mark = rows[label]
        assert direction == better
        if old[key] is None:
            assert (base, head, mark) == ("n/a", "n/a", "n/a")
        else:
            assert (base, head) == (shown(old, key), shown(new, key))
            floors = (shown(old["floor"], key), shown(new["floor"], key))
            assert floor == (floors[0] if floors[0] == floors[1] else " → ".join(floors))
            assert mark.endswith(("better", "worse", "same"))
    # The base scored 24 samples (three draws of 8) and the head 12 (one): only the base's
    # SWD has a standard error, so no change is called noise.
    assert " ± " in rows["SWD 16x16 (x1e3)"][1] and " ± " not in rows["SWD 16x16 (x1e3)"][2]
    assert " → " in rows["SWD 32x32 (x1e3)"][4]  # the floor moved with the number of samples

    timing = {row[0]: row[1:] for row in table_rows(text, "| |")}["training time"]
    assert timing[0] == f"{old['train_seconds']:.3g} s"
    assert timing[1].startswith(f"{new['train_seconds']:.3g} s")

    assert check_links(out) == ["samples.png", "losses.png", "progress.png"]
    # Both sides are in one picture: side by side for samples, stacked for progress.
    samples = Image.open(out / "samples.png").size
    assert samples[0] > 2 * committed_png_size(root, "HEAD", "samples.png")[1]
    progress = Image.open(out / "progress.png").size
    assert progress[1] > 2 * committed_png_size(root, "HEAD", "progress.png")[0]


def test_a_first_run_shows_the_head_alone(history, tmp_path):
    root, commits = history
    path = review.write_review(root, commits["code"], commits["first"], tmp_path)
    text = path.read_text()
    assert "has no committed `reports/metrics.json` (a first run): the head is shown alone" in text
    head = committed_metrics(root, commits["first"])
    rows = {row[0]: row for row in table_rows(text, "| metric | head |")}
    assert rows["SWD 32x32 (x1e3)"][1:3] == [shown(head, "swd_32"),
                                             shown(head["floor"], "swd_32")]
    assert len(rows) == len(METRICS)
    short = sh(root, "git", "rev-parse", "--short", commits["first"]).strip()
    assert f"| | head {short} |" in text.splitlines()
    assert "stale" not in text
    assert check_links(tmp_path) == ["samples.png", "losses.png", "progress.png"]
    # The head's grid alone, under its label.
    width = Image.open(tmp_path / "samples.png").width
    assert width < 1.5 * committed_png_size(root, commits["first"], "samples.png")[1]


def test_a_stale_head_is_flagged_at_the_top_naming_what_is_stale(history, tmp_path):
    root, commits = history
    text = review.write_review(root, "main", "stale", tmp_path).read_text()
    warning = text.index("> **The head's reports are stale.**")
    assert warning < text.index("## Params that changed")
    reasons = [line for line in text.splitlines() if line.startswith("> - ")]
    assert reasons == ["> - stage `train`: param `train.g_learning_rate` is 0.001 in "
                       "params.yaml, but the stage ran with 0.0004"]
    assert table_rows(text, "| param |") == [["`train.g_learning_rate`", "0.0004", "0.001"]]


def test_work_tree_changes_are_named_and_left_out(history, tmp_path):
    root, _ = history
    params = root / "params.yaml"
    committed = params.read_text()
    try:
        params.write_text(committed.replace("num_samples: 12", "num_samples: 6"))
        text = review.write_review(root, "HEAD~1", "HEAD", tmp_path).read_text()
    finally:
        params.write_text(committed)
    assert "Left out: the work tree's uncommitted changes to `params.yaml`." in text
    assert table_rows(text, "| param |") == [["`sample.num_samples`", "24", "12"]]


@pytest.mark.parametrize("arguments, message", [
    (["--base", "no-such-branch"], "error: 'no-such-branch': names no commit in "),
    (["--base", "HEAD", "--head", "HEAD~2"], "commits no reports/metrics.json: run `dvc repro`"),
])
def test_bad_refs_are_one_line_and_exit_1(history, tmp_path, monkeypatch, capsys, arguments,
                                          message):
    root, _ = history
    monkeypatch.chdir(root)
    assert run(review.main, [*arguments, "--out", str(tmp_path)]) == 1
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error
    assert not (tmp_path / "review.md").exists()


@pytest.mark.parametrize("better, old, new, old_floor, new_floor, expected", [
    ("lower", 2.0, 1.0, 0.5, 0.5, "better"),
    ("lower", 1.0, 2.0, 0.5, 0.5, "worse"),
    ("lower", 1.0, 1.0, 0.5, 0.5, "same"),
    ("lower", None, None, None, None, "n/a"),
    ("near the floor", 0.10, 0.14, 0.15, 0.15, "better"),   # closer to the floor from below
    ("near the floor", 0.16, 0.20, 0.15, 0.15, "worse"),    # further above it
    ("near the floor", 0.10, 0.10, 0.15, 0.11, "better"),   # the head's own floor is nearer
    ("near the floor", 0.10, 0.12, None, 0.15, "n/a"),
    ("higher", 1.0, 2.0, None, None, "better"),
])
def test_verdict_follows_each_metrics_direction(better, old, new, old_floor, new_floor,
                                                expected):
    assert review.verdict(better, old, new, old_floor, new_floor) == expected


@pytest.mark.parametrize("old_error, new_error, expected", [
    (0.5, 0.5, "within noise"),   # a change of 1.0 is 1.4 standard errors of the difference
    (0.2, 0.2, "better"),         # and here 3.5
    (None, 0.2, "better"),        # the base gave no error: no noise estimate
])
def test_verdict_calls_a_change_within_two_standard_errors_noise(old_error, new_error, expected):
    assert review.verdict("lower", 30.0, 29.0, 20.0, 20.0, old_error, new_error) == expected
    reverse = {"better": "worse"}.get(expected, expected)
    assert review.verdict("lower", 29.0, 30.0, 20.0, 20.0, new_error, old_error) == reverse


def test_labelled_montage_lays_panels_out_with_their_labels():
    left = np.zeros((40, 60, 3), np.uint8)
    right = np.zeros((50, 30, 3), np.uint8)
    row = montage.labelled([("base", left), ("head", right)], "row")
    column = montage.labelled([("base", left), ("head", right)], "column")
    assert row.shape[1] >= 60 + 30 + montage.GAP and row.shape[0] > 50
    assert column.shape[0] >= 40 + 50 + montage.GAP and column.shape[1] >= 60
    assert (row[:10] < 128).any()  # a label is drawn above the panels
    with pytest.raises(ValueError):
        montage.labelled([], "row")


def actionlint():
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent)) \
        or shutil.which("actionlint")
    assert found, "actionlint is missing: install the test extra (pip install -e '.[test]')"
    return found


def lint(*paths, cwd):
    return subprocess.run([actionlint(), "-oneline", *map(str, paths)], cwd=cwd,
                          capture_output=True, text=True)


def test_workflows_pass_actionlint():
    workflows = sorted((REPO / ".github" / "workflows").glob("*.yml"))
    assert workflows
    result = lint(*workflows, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_fails_on_a_broken_workflow(tmp_path):
    text = (REPO / ".github" / "workflows" / "review.yml").read_text()
    assert "github.base_ref" in text
    broken = tmp_path / "review.yml"
    broken.write_text(text.replace("github.base_ref", "github.base_branch"))
    result = lint(broken, cwd=tmp_path)
    assert result.returncode != 0 and 'property "base_branch" is not defined' in result.stdout
