"""A run stopped and run again: it resumes from its last checkpoint and takes the whole run's
steps, unless its params changed; a run that diverges keeps only finite checkpoints."""

import json

import numpy as np
import pytest
import tensorflow as tf

from dcgan import training
from dcgan.errors import TrainingError
from dcgan.gan import GAN
from tiny import random_images, recipe, same, weights


@pytest.mark.parametrize("name, overrides", [
    ("chollet", {}),
    # LeCam's anchors are state as much as the weights are: a resumed run that started them
    # from zero again would part ways with the whole one at step 4. Its weight is set here, so
    # that the case holds whatever the recipe's.
    ("compact", {"train__lecam_weight": 1.0}),
    # Lazy R1 picks its steps by the step counter, and its growing weight is read from it: a
    # resumed run that counted from zero again would add the penalty on steps 4 and 6 instead
    # of 5, and weigh it as on step 1.
    ("compact", {"train__r1_gamma": 10.0, "train__r1_every": 2, "train__r1_gamma_growth": 3.0}),
    # ADA's chance and its count of reals since it last moved are state: a resumed run that
    # started them afresh would move the chance on step 7, not on step 4.
    ("compact", {"train__augment_probability": 0.5, "train__augment_target": 0.6,
                 "train__augment_ramp": 64}),
    # The batch grows from 8 to 16 on the step the resumed run starts with: its data must be
    # the late batches' own draws, and its steps must work on the larger batch.
    ("compact", {"train__late_share": 0.5, "train__late_batch_size": 16}),
], ids=["chollet", "compact-lecam", "compact-lazy-r1", "compact-ada", "compact-late-batch"])
def test_six_steps_equal_three_then_resume_then_three(tmp_path, name, overrides):
    model, train = recipe(name, **overrides)
    fingerprint = "data"  # the training data's digest
    images = random_images()
    whole = training.fit(images, model, train, tmp_path / "a", fingerprint)
    training.fit(images, model, train, tmp_path / "b", fingerprint, stop_after=3)
    resumed = training.fit(images, model, train, tmp_path / "b", fingerprint)
    assert resumed.resumed_from == 3
    assert [r["step"] for r in resumed.log_rows] == [1, 2, 3, 4, 5, 6]
    assert whole.log_rows == [{**row, "seconds": left["seconds"]}
                              for left, row in zip(whole.log_rows, resumed.log_rows)]
    for left, right in zip(whole.log_rows, resumed.log_rows):
        assert (left["d_loss"], left["g_loss"]) == (right["d_loss"], right["g_loss"])
    assert same(weights(whole.gan.sampler), weights(resumed.gan.sampler))
    assert sorted(resumed.snapshots) == [2, 4, 6]
    assert np.array_equal(whole.snapshots[6], resumed.snapshots[6])


def test_checkpoint_with_other_params_is_not_resumed(tmp_path, caplog):
    model, train = recipe()
    images = random_images()
    training.fit(images, model, train, tmp_path, "d",
                   stop_after=3)
    model, train = recipe(train__d_learning_rate=0.001)
    result = training.fit(images, model, train, tmp_path,
                            "d")
    assert result.resumed_from == 0
    assert "train.d_learning_rate was 0.0008, now 0.001" in caplog.text
    assert "starting fresh" in caplog.text


def test_checkpoint_resumes_when_only_the_logging_cadence_changed(tmp_path):
    model, train = recipe()
    images = random_images()
    training.fit(images, model, train, tmp_path, "d",
                 stop_after=3)
    model, train = recipe(train__log_every=2, train__snapshot_every=3,
                          train__checkpoint_every=2)
    result = training.fit(images, model, train, tmp_path,
                          "d")
    assert result.resumed_from == 3


def test_nan_loss_stops_with_the_step_named_and_keeps_last_good_checkpoint(tmp_path,
                                                                         monkeypatch):
    original = GAN.generator_step

    def poisoned(self, batch):
        # The fifth step's loss is NaN, whatever the network does.
        g_loss = original(self, batch)["g_loss"]
        return {"g_loss": tf.where(self.step_counter >= 4, float("nan"), g_loss)}

    monkeypatch.setattr(GAN, "generator_step", poisoned)
    model, train = recipe(train__iterations=12, train__checkpoint_every=2, train__log_every=3)
    with pytest.raises(TrainingError, match=r"NaN or infinite at step 5; stopped, and the "
                                            r"checkpoint at step 4 is kept"):
        training.fit(random_images(), model, train, tmp_path, "d")
    assert json.loads((tmp_path / "latest.json").read_text())["step"] == 4
    assert [p.name for p in tmp_path.glob("ckpt-*")] == ["ckpt-00000004"]


def test_weights_turned_nan_by_a_finite_step_are_never_checkpointed(tmp_path, monkeypatch):
    original = GAN.generator_step

    def poisoning(self, batch):
        # The third update leaves a NaN in a weight while its own loss is finite.
        metrics = original(self, batch)
        kernel = self.generator.trainable_variables[0]
        kernel.assign(tf.where(self.step_counter >= 2, float("nan"), kernel))
        return metrics

    monkeypatch.setattr(GAN, "generator_step", poisoning)
    model, train = recipe(train__checkpoint_every=1)
    with pytest.raises(TrainingError, match=r"at step 3; stopped, and the checkpoint at "
                                            r"step 2 is kept"):
        training.fit(random_images(), model, train, tmp_path, "d")
    with np.load(tmp_path / "ckpt-00000002" / "state.npz") as state:
        assert all(np.all(np.isfinite(state[key])) for key in state.files
                   if state[key].dtype.kind == "f")


def test_the_divergence_message_says_when_no_checkpoint_is_kept(tmp_path, monkeypatch):
    model, train = recipe()
    training.fit(random_images(), model, train, tmp_path, "d", stop_after=3)
    original = GAN.generator_step
    monkeypatch.setattr(GAN, "generator_step", lambda self, batch: {
        "g_loss": original(self, batch)["g_loss"] * float("nan")})
    # Other params: the old checkpoint goes, and the run diverges before it saves one.
    model, train = recipe(train__g_learning_rate=0.001)
    with pytest.raises(TrainingError, match=r"at step 1; stopped, and no checkpoint is kept"):
        training.fit(random_images(), model, train, tmp_path, "d")
    assert not list(tmp_path.glob("ckpt-*"))


@pytest.mark.parametrize("stop", [{"stop_after": 3}, {"max_seconds": 0}])
def test_a_resumed_log_equals_the_uninterrupted_one(tmp_path, stop):
    model, train = recipe(train__log_every=2)
    images = random_images()
    whole = training.fit(images, model, train, tmp_path / "whole", "d")
    first = training.fit(images, model, train, tmp_path / "cut", "d", **stop)
    assert first.last_step in (1, 3) and all(r["step"] % 2 == 0 for r in first.log_rows)
    resumed = training.fit(images, model, train, tmp_path / "cut", "d")
    assert resumed.resumed_from == first.last_step
    assert [r["step"] for r in resumed.log_rows] == [r["step"] for r in whole.log_rows] == [
        2, 4, 6]
