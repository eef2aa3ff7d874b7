"""Loss plots for people: TensorBoard's smoothing over the raw values."""

import numpy as np
import pandas
import pytest
from PIL import Image

from dcgan import plots


def test_smoothing_is_tensorboards_debiased_moving_average():
    # With weight w the average is (1 - w) * sum(w**(n-i) * x_i), divided by 1 - w**n.
    assert np.allclose(plots.smooth([1.0, 3.0], weight=0.5), [1.0, (0.25 + 1.5) / 0.75])
    assert np.allclose(plots.smooth([0.7] * 50), 0.7)  # no pull towards zero at the start
    noisy = 0.7 + 0.2 * np.random.default_rng(0).standard_normal(500)
    assert plots.smooth(noisy).std() < 0.5 * noisy.std()
    smoothed = plots.smooth([1.0, np.nan, 3.0], weight=0.5)
    assert np.isnan(smoothed[1]) and np.isclose(smoothed[2], (0.25 + 1.5) / 0.75)
    with pytest.raises(ValueError):
        plots.smooth([1.0], weight=1.0)


def test_loss_plots_of_one_run_and_of_two_are_written(tmp_path):
    steps = np.arange(1, 201)
    noisy = 0.7 + 0.2 * np.random.default_rng(0).standard_normal(len(steps))
    log = pandas.DataFrame({"step": steps, "d_loss": noisy, "g_loss": noisy + 1,
                            "d_real_accuracy": np.full(len(steps), 0.6),
                            "d_fake_accuracy": np.full(len(steps), 0.4)})
    plots.save_loss_plot(tmp_path / "one.png", log)
    plots.save_loss_comparison(tmp_path / "two.png", {"base": log, "head": log[::2]})
    for name in ("one.png", "two.png"):
        with Image.open(tmp_path / name) as picture:
            assert picture.format == "PNG" and picture.width >= 800
