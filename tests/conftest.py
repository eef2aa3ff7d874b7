"""Fixtures shared by the test files: a tiny CIFAR-10 archive and a private Keras cache."""

from __future__ import annotations

import pytest

from cifar_archive import build_cifar_archive

# The modules that take longest, in the order the test workers start them. Each worker runs a
# whole module at a time (pyproject.toml's loadscope), so a long module started last would keep
# one worker busy long after the others had finished. The rest follow in collection order.
LONGEST_FIRST = ("test_resume.py", "test_distribute.py", "test_train.py", "test_engine.py",
                 "test_pipeline.py", "test_gan.py", "test_regularisers.py", "test_review.py")


def pytest_collection_modifyitems(items):
    """Puts the modules of LONGEST_FIRST first, in its order; tests keep their order within
    each module."""
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


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
