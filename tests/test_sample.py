"""The sample stage: reproducible samples, PNG files, clear errors on a bad generator."""


import numpy as np
import pytest

from dcgan import train_outputs, training
from dcgan.cli import run
from dcgan.errors import DataError
from dcgan.sampling import draw_samples, load_generator, sample_latents
from stages import sample as sample_stage
from tiny import random_images, recipe, tiny_params, write_params


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """A tiny trained generator saved the way the train stage saves it."""
    root = tmp_path_factory.mktemp("trained")
    model, train = recipe("compact", train__iterations=2)
    images = random_images(32)
    result = training.fit(images, model, train, root / "checkpoints",
                            "d")
    train_outputs.save_outputs(result, root / "models")
    return root / "models"


def test_latent_i_depends_only_on_seed_and_i():
    assert np.array_equal(sample_latents(3, np.array([5]), 8)[0],
                          sample_latents(3, np.arange(10), 8)[5])
    assert not np.array_equal(sample_latents(3, np.array([5]), 8),
                              sample_latents(4, np.array([5]), 8))


def test_samples_do_not_depend_on_batch_size(models_dir):
    generator = load_generator(models_dir / "generator.keras")
    one, latents_one = draw_samples(generator, 13, seed=7, batch_size=1, pixel_range="symmetric")
    many, latents_many = draw_samples(generator, 13, seed=7, batch_size=5, pixel_range="symmetric")
    assert one.dtype == np.uint8 and one.shape == (13, 32, 32, 3)
    assert np.array_equal(latents_one, latents_many)
    # Batch size changes only the floating-point order of the matrix products.
    assert np.abs(one.astype(int) - many.astype(int)).max() <= 1


def test_stage_writes_samples_and_pngs(tmp_path, models_dir):
    params = write_params(tmp_path / "params.yaml", tiny_params())
    out = tmp_path / "samples"
    assert run(sample_stage.main, ["--params", str(params), "--models", str(models_dir),
                                   "--out", str(out)]) == 0
    with np.load(out / "samples.npz") as samples:
        assert samples["images"].shape == (24, 32, 32, 3)
        assert samples["images"].dtype == np.uint8
        assert samples["latents"].shape == (24, 8)
    assert len(list((out / "png").glob("*.png"))) == 24


@pytest.mark.parametrize("content, message", [
    (None, "generator file not found"),
    (b"not a zip", "not a Keras model file"),
    (b"PK\x03\x04broken zip", "not a Keras model file"),
])
def test_missing_or_corrupt_generator_is_one_clear_line(tmp_path, models_dir, capsys,
                                                        content, message):
    broken = tmp_path / "models"
    broken.mkdir()
    (broken / "recipe.json").write_text((models_dir / "recipe.json").read_text())
    if content is not None:
        (broken / "generator.keras").write_bytes(content)
    params = write_params(tmp_path / "params.yaml", tiny_params())
    code = run(sample_stage.main, ["--params", str(params), "--models", str(broken),
                                   "--out", str(tmp_path / "samples")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and message in err and "\n" not in err
    assert not (tmp_path / "samples").exists()


def test_discriminator_is_not_taken_for_a_generator(models_dir):
    with pytest.raises(DataError, match="expected a generator"):
        load_generator(models_dir / "discriminator.keras")
