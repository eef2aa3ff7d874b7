"""The checkpoint store: only finite states, only its own files, only variables that fit."""

import json
import logging

import numpy as np
import pytest
import tensorflow as tf

from dcgan.checkpoints import CheckpointStore
from dcgan.errors import DataError, TrainingError


def state(*shapes, value=1.0):
    return {"net": [tf.Variable(np.full(shape, value, np.float32)) for shape in shapes]}


def test_a_state_with_nan_is_never_written_and_the_kept_step_is_named(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save(state((2, 2)), {"f": 1}, 4, [], 1.0)
    poisoned = state((2, 2), value=np.nan)
    with pytest.raises(TrainingError, match=r"holds NaN or infinity at step 5; the checkpoint "
                                            r"at step 4 is kept"):
        store.save(poisoned, {"f": 1}, 5, [], 2.0)
    assert store.latest_step() == 4
    assert [p.name for p in tmp_path.glob("ckpt-*")] == ["ckpt-00000004"]


def test_a_folder_holding_other_files_is_refused_and_left_alone(tmp_path):
    (tmp_path / "thesis.tex").write_text("years of work")
    (tmp_path / "figures").mkdir()
    with pytest.raises(DataError) as error:
        CheckpointStore(tmp_path)
    message = str(error.value)
    assert "figures, thesis.tex" in message and "not a checkpoint folder" in message
    assert "\n" not in message
    assert (tmp_path / "thesis.tex").read_text() == "years of work"


def test_clearing_removes_only_what_a_store_writes(tmp_path, caplog):
    store = CheckpointStore(tmp_path)
    store.save(state((2,)), {"f": 1}, 3, [], 1.0)
    store.write_snapshot(3, np.zeros((2, 32, 32, 3), np.uint8))
    (tmp_path / ".ckpt-00000009.abc.tmp").mkdir()  # left by a kill during a save
    with caplog.at_level(logging.WARNING):
        assert CheckpointStore(tmp_path).restore(state((2,)), {"f": 2}) is None
    assert "f was 1, now 2" in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_whose_variables_do_not_fit_starts_fresh_without_a_traceback(tmp_path,
                                                                                 caplog):
    store = CheckpointStore(tmp_path)
    # As float16 training does: an optimizer with more variables than a float32 run's.
    store.save({"net": state((3, 2))["net"],
                "opt": [tf.Variable(2.0), tf.Variable(7, dtype=tf.int64)]}, {"f": 1}, 6, [], 1.0)
    smaller = {"net": state((3, 2))["net"], "opt": [tf.Variable(0.0)]}
    with caplog.at_level(logging.WARNING):
        assert store.restore(smaller, {"f": 1}) is None
    assert "does not fit this run's variables (opt/1 not used)" in caplog.text
    assert float(smaller["opt"][0].numpy()) == 0.0  # nothing assigned
    store.save(state((3, 2)), {"f": 1}, 7, [], 1.0)
    with caplog.at_level(logging.WARNING):
        assert store.restore(state((2, 3)), {"f": 1}) is None
    assert "net/0 is (3, 2) float32, expected (2, 3) float32" in caplog.text


def test_a_matching_checkpoint_restores_every_variable(tmp_path):
    store = CheckpointStore(tmp_path)
    saved = state((2, 2), (3,), value=5.0)
    store.save(saved, {"f": 1}, 2, [{"step": 2, "d_loss": 0.5}], 3.5)
    target = state((2, 2), (3,), value=0.0)
    restored = CheckpointStore(tmp_path).restore(target, {"f": 1})
    assert (restored.step, restored.seconds, restored.log_rows) == (
        2, 3.5, [{"step": 2, "d_loss": 0.5}])
    assert all(np.all(v.numpy() == 5.0) for v in target["net"])
    assert json.loads((tmp_path / "latest.json").read_text()) == {
        "checkpoint": "ckpt-00000002", "step": 2}
