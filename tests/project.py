"""Builds a git + DVC copy of the project on tiny params, for the end-to-end tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from cifar_archive import build_cifar_archive
from tiny import tiny_params, write_params

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("dcgan", "stages", "recipes")
FILES = ("dvc.yaml", ".gitignore", ".dvcignore", "Makefile")


def sh(cwd, *command, capture: bool = True) -> str:
    """Runs a command with this interpreter's scripts first on PATH; fails the test on error.

    capture=False sends the output to /dev/null, for a command that leaves a process running
    (`dvc queue start`): one that held the captured pipe would keep this call waiting until
    it exited.
    """
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    stream = subprocess.PIPE if capture else subprocess.DEVNULL
    result = subprocess.run(command, cwd=cwd, env=env, stdout=stream, stderr=stream, text=True)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout or ""


def tiny_archive(folder: Path) -> dict:
    """A CIFAR-10-layout archive of 40 records per batch; build_cifar_archive's dict."""
    return build_cifar_archive(folder / "cifar-10-binary.tar.gz", records_per_batch=40)


def project_params(archive: dict, **overrides) -> dict:
    """Tiny params reading `archive`, with 4 steps of 4 images; overrides as in tiny_params."""
    return tiny_params(**{"prepare__url": archive["path"].as_uri(),
                          "prepare__md5": archive["md5"],
                          "train__batch_size": 4, "train__iterations": 4, **overrides})


def create_project(root: Path, params: dict) -> Path:
    """Copies the pipeline's code into `root`, writes `params` and runs git and DVC init there.

    Nothing is committed or run: the caller decides what the first commit holds.
    """
    root.mkdir(parents=True, exist_ok=True)
    for name in FOLDERS:
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in FILES:
        shutil.copy(REPO / name, root / name)
    write_params(root / "params.yaml", params)
    sh(root, "git", "init", "-q")
    sh(root, "git", "config", "user.email", "ci@example.com")
    sh(root, "git", "config", "user.name", "CI")
    sh(root, "dvc", "init", "-q")
    sh(root, "dvc", "config", "core.analytics", "false")
    return root


def commit(root: Path, message: str) -> str:
    """Commits everything in the work tree; returns the new commit's hash."""
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", message)
    return sh(root, "git", "rev-parse", "HEAD").strip()
