"""Fixtures shared by the test files: a tiny CIFAR-10 archive and a private Keras cache."""

from __future__ import annotations

import pytest

from cifar_archive import build_cifar_archive


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """Points KERAS_HOME at a fresh folder, so downloads are cached under the test's tmp path."""
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


@pytest.fixture
def cifar_archive(tmp_path, keras_home):
    """Builds a 30-records-per-batch archive; returns (file:// URL, md5, expected dict).

    The expected dict is build_cifar_archive's: `train` and `test` map each class name to its
    images in archive order.
    """
    expected = build_cifar_archive(tmp_path / "source" / "cifar-10-binary.tar.gz")
    return expected["path"].as_uri(), expected["md5"], expected
