"""report.md: what was run, the metrics beside their floors, the grids and the loss plot."""

from __future__ import annotations

from pathlib import Path

from dcgan import grids, metrics, plots, train_outputs
from dcgan.artifacts import write_json, write_text
from dcgan.errors import DataError
from dcgan.evaluation import METRICS, evaluate
from dcgan.params import EvaluateParams
from dcgan.snapshots import read_snapshots
from dcgan.train_log import OPTIONAL_COLUMNS, read_train_log

RECIPE_KEYS = (
    ("model", "architecture"), ("model", "width"), ("model", "latent_dim"),
    ("model", "minibatch_std_group"),
    ("train", "iterations"), ("train", "batch_size"), ("train", "late_share"),
    ("train", "late_batch_size"), ("train", "optimizer"),
    ("train", "d_learning_rate"), ("train", "g_learning_rate"), ("train", "loss"),
    ("train", "augment"), ("train", "augment_probability"), ("train", "augment_target"),
    ("train", "augment_fade"), ("train", "r1_gamma"), ("train", "r1_every"),
    ("train", "lecam_weight"), ("train", "consistency_weight"), ("train", "ema"),
    ("train", "pixel_range"),
    ("train", "seed"),
)
FIGURES = (
    ("samples.png", "Generated samples"),
    ("real.png", "Reference images"),
    ("progress.png", "One generator over training: rows are fixed latent vectors, columns "
                     "snapshots"),
    ("nearest.png", "Generated images (left of each pair) beside their nearest training image"),
    ("losses.png", "Losses and discriminator accuracy"),
)


def format_number(value) -> str:
    """A param or metric as reports print it: 4 significant digits, n/a for None."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def with_error(scores: dict, key: str) -> str:
    """A metric as reports print it, with "± standard error" where it has one."""
    error = scores.get(f"{key}_error")
    text = format_number(scores.get(key))
    return text if error is None else f"{text} ± {error:.2g}"


def markdown(recipe: dict, metrics: dict, report_dir: str | Path) -> str:
    """The report as GitHub markdown, linking only figures present in `report_dir`."""
    report_dir = Path(report_dir)
    lines = ["# GAN run report", "", "## What was run", "",
             "| param | value |", "| --- | --- |"]
    for section, key in RECIPE_KEYS:
        lines.append(f"| {section}.{key} | {format_number(recipe[section][key])} |")
    engine = recipe["engine"]
    lines += [f"| training time | {format_number(metrics['train_seconds'])} s on "
              f"{engine['devices']} device(s), in {engine['precision']} |",
              f"| samples scored | {metrics['num_samples']} |", "",
              "## Metrics", "",
              "Each metric is shown beside its floor: what real data scores when the training "
              "images are measured against the held-out reference set the same way. SWD is "
              f"the mean over {metrics['swd_draws']} draw(s) of {metrics['swd_draw_size']} "
              "images, ± the standard error of that mean.", "",
              "| metric | generated | real data (floor) | better | measures |",
              "| --- | --- | --- | --- | --- |"]
    for key, (label, better, meaning) in METRICS.items():
        lines.append(f"| {label} | {with_error(metrics, key)} "
                     f"| {with_error(metrics['floor'], key)} | {better} | {meaning} |")
    lines += ["", f"Inception metrics: {metrics['inception']}.", "",
              f"Last logged losses: discriminator {format_number(metrics['d_loss'])}, generator "
              f"{format_number(metrics['g_loss'])}.", ""]
    for name, caption in FIGURES:
        if (report_dir / name).is_file():
            lines += [f"### {caption}", "", f"![{caption}]({name})", ""]
    return "\n".join(lines)


def inception_model_for(setting: str):
    """The Inception network, or None with the reason it is not used."""
    if setting == "off":
        return None, "off (evaluate.inception is off)"
    weights, reason = metrics.inception_weights()
    if weights is None:
        if setting == "required":
            raise DataError(f"evaluate.inception is 'required' but {reason}")
        return None, f"not computed: {reason}"
    return metrics.load_inception(weights), "computed with InceptionV3 ImageNet weights"


def write_reports(samples, training_images, reference, models_dir: Path, recipe: dict,
                  params: EvaluateParams, out_dir: Path) -> dict:
    """Computes everything first, then writes each report file atomically."""
    losses = read_train_log(models_dir / train_outputs.LOG)
    snapshots = read_snapshots(models_dir / train_outputs.SNAPSHOTS)
    inception_model, inception_note = inception_model_for(params.inception)
    scores = evaluate(samples, training_images, reference, params, inception_model)
    last = losses.iloc[-1]
    results = {**scores["generated"], "floor": scores["floor"], "inception": inception_note,
               "d_loss": float(last["d_loss"]), "g_loss": float(last["g_loss"]),
               "num_samples": len(samples), "swd_draws": scores["swd_draws"],
               "swd_draw_size": scores["swd_draw_size"], "train_seconds": recipe["seconds"]}
    for column in OPTIONAL_COLUMNS:
        if column in losses.columns:
            results[column] = float(last[column])

    count = params.grid_size ** 2
    nearest_count = min(len(samples), 4 * params.grid_size)
    _, nearest = metrics.nearest_neighbour_distances(samples[:nearest_count],
                                                     training_images)
    figures = {
        "samples.png": grids.image_grid(samples[:count], params.grid_size, params.grid_size),
        "real.png": grids.image_grid(reference[:count], params.grid_size, params.grid_size),
        "nearest.png": grids.pairs_grid(samples[:nearest_count], training_images[nearest]),
    }
    if snapshots:
        figures["progress.png"] = grids.progress_grid(snapshots)

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, image in figures.items():
        grids.save_png(out_dir / name, image)
    plots.save_loss_plot(out_dir / "losses.png", losses)
    write_text(out_dir / "losses.csv", losses.to_csv(index=False))
    write_json(out_dir / "metrics.json", results)
    write_text(out_dir / "report.md", markdown(recipe, results, out_dir))
    return results
