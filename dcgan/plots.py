"""Loss curves for people: a smoothed line over the faint raw values, as TensorBoard draws them."""

from __future__ import annotations

import io
import os
from typing import Mapping

import numpy as np

from dcgan.artifacts import write_bytes

# The weight of TensorBoard's smoothing slider. At 0.9 each point carries about the last ten
# logged values (100 steps at the default log_every of 10), which shows the trend of a GAN's
# noisy losses without hiding a collapse that lasts a few hundred steps.
SMOOTHING = 0.9
RAW_ALPHA = 0.25
SMOOTHING_NOTE = (f"lines: exponential moving average (weight {SMOOTHING}, debiased); "
                  "faint: raw values")


def smooth(values, weight: float = SMOOTHING) -> np.ndarray:
    """Smooths a series as TensorBoard's scalar dashboard does.

    An exponential moving average started at zero and divided by (1 - weight**n), so the first
    points are not pulled towards zero. A non-finite value is passed through and skipped.

    Raises:
        ValueError: `weight` is outside [0, 1).
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    values = np.asarray(values, dtype=np.float64)
    smoothed = np.empty_like(values)
    average, count = 0.0, 0
    for i, value in enumerate(values):
        if not np.isfinite(value):
            smoothed[i] = value
            continue
        average = weight * average + (1.0 - weight) * value
        count += 1
        smoothed[i] = average / (1.0 - weight ** count)
    return smoothed


def _draw(axes, steps, values, color, label: str, linestyle: str = "-") -> None:
    axes.plot(steps, values, color=color, alpha=RAW_ALPHA, linewidth=0.8)
    axes.plot(steps, smooth(values), color=color, linewidth=1.8, linestyle=linestyle,
              label=label)


def _save(figure, path: str | os.PathLike) -> None:
    figure.text(0.5, 0.01, SMOOTHING_NOTE, ha="center", va="bottom", fontsize=8,
                color="dimgray")
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    write_bytes(path, buffer.getvalue())


def _figure(columns: int):
    # A bare Figure, not pyplot: no global state, no GUI backend, nothing to close.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5 * columns, 3.8), dpi=100)
    return figure, figure.subplots(1, columns)


def save_loss_plot(path: str | os.PathLike, log) -> None:
    """Draws one run's losses and the discriminator's accuracies against the step.

    Args:
        path: The PNG to write, atomically.
        log: The train log (a DataFrame with step, d_loss, g_loss, d_real_accuracy and
            d_fake_accuracy columns), raw as training logged it.
    """
    figure, (losses, accuracy) = _figure(2)
    _draw(losses, log["step"], log["d_loss"], "C0", "discriminator")
    _draw(losses, log["step"], log["g_loss"], "C1", "generator")
    losses.set(xlabel="step", ylabel="loss", title="Losses")
    losses.legend()
    _draw(accuracy, log["step"], log["d_real_accuracy"], "C2", "on real")
    _draw(accuracy, log["step"], log["d_fake_accuracy"], "C3", "on generated")
    accuracy.set(xlabel="step", ylabel="accuracy", title="Discriminator accuracy",
                 ylim=(-0.05, 1.05))
    accuracy.legend()
    _save(figure, path)


def save_loss_comparison(path: str | os.PathLike, logs: Mapping[str, object]) -> None:
    """Draws the losses of several runs in one figure: a panel per network, a colour per run.

    Args:
        path: The PNG to write, atomically.
        logs: Run label to its train log (step, d_loss and g_loss columns), in drawing order;
            the last run is drawn on top.
    """
    figure, panels = _figure(2)
    # The last run (the head of a comparison) solid in blue; the earlier ones dashed, the
    # first of them (the base) in grey.
    styles = [("gray" if i == 0 else f"C{i}", "--") for i in range(len(logs) - 1)]
    styles.append(("C0", "-"))
    for (label, log), (color, linestyle) in zip(logs.items(), styles):
        for axes, column in zip(panels, ("d_loss", "g_loss")):
            _draw(axes, log["step"], log[column], color, label, linestyle)
    for axes, title in zip(panels, ("Discriminator loss", "Generator loss")):
        axes.set(xlabel="step", ylabel="loss", title=title)
        axes.legend()
    _save(figure, path)
