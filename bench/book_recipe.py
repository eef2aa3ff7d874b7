"""Trains the book's recipe as it ran before the Keras 2 semantics fix and as it runs now.

    python bench/book_recipe.py IMAGES_DIR --steps 300 --out docs/book-recipe
        [--log-every 10] [--snapshot-every 30] [--seed 0] [--params params.yaml]

IMAGES_DIR is a folder of images (for example the CIFAR-10 frogs as PNG files); a share of it
is held out as the reference set as params.yaml's prepare section says for `source: images`.
recipes/chollet.yaml trains twice for --steps steps with the same seed:

- before: Keras 3's RMSprop without decay, the exact cross-entropy of the logits and images
  in [-1, 1], as this project trained the book's recipe before it followed Keras 2.0.8;
- after: the recipe as it is (Keras 2's RMSprop update and decay, its clipped cross-entropy,
  images in [0, 1]).

Writes under --out the train logs (losses-before.csv, losses-after.csv), both runs' losses in
one figure (losses.png), each run's snapshots (progress-before.png, progress-after.png) and
both runs' samples side by side (samples.png), and prints a table (also written as
table.md): wall seconds, the final losses, how far the generator's weights moved and SWD
against the reference set beside the real-data floor, Inception off.

--width and --latent-dim shrink the networks, and --num-samples the scoring, for a smoke test
of this script only; the numbers it prints then say nothing about the book's recipe.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dcgan.cpu import sort_without_avx512  # noqa: E402

sort_without_avx512()  # scores as the evaluate stage does, before NumPy is imported

import numpy as np  # noqa: E402
import pandas  # noqa: E402

from dcgan import grids, montage, plots, train_log, training  # noqa: E402
from dcgan.artifacts import write_text  # noqa: E402
from dcgan.evaluation import evaluate  # noqa: E402
from dcgan.images import read_image_folder  # noqa: E402
from dcgan.losses import CrossEntropyLoss  # noqa: E402
from dcgan.params import load_sections  # noqa: E402
from dcgan.recipes import load_recipe  # noqa: E402
from dcgan.sampling import draw_samples  # noqa: E402

# The train keys the fix changed, as they were before it; the loss is swapped in by a hook,
# since no loss name means the exact cross-entropy with the book's labels.
BEFORE = {"optimizer": "rmsprop", "learning_rate_decay": 0.0, "pixel_range": "symmetric"}
# Each run's name in file names, its label in figures and what it trains with.
RUNS = (("before", "before the fix", "Keras 3 RMSprop, exact loss, images in [-1, 1]"),
        ("after", "after the fix", "Keras 2 RMSprop, clipped loss, images in [0, 1]"))
GRID = 8
# The share of logged rows at the end of a run whose mean is reported as its final loss.
FINAL_SHARE = 0.1


logger = logging.getLogger("book_recipe")


@dataclasses.dataclass
class Run:
    name: str
    label: str
    description: str
    pixel_range: str
    g_learning_rate: float
    result: training.TrainResult
    weight_change: float


def exact_book_loss(label_noise: float) -> CrossEntropyLoss:
    """The book's labels and noise (fakes 1, reals 0) on the exact cross-entropy of logits."""
    return CrossEntropyLoss(0.0, label_noise, (1.0, 1.0), probability_clip=None)


def train_run(name: str, label: str, description: str, images: np.ndarray, model,
              train) -> Run:
    """Trains one run in a checkpoint folder of its own, which it deletes afterwards."""
    start = []

    def hook(gan):
        if name == "before":
            gan.loss = exact_book_loss(train.label_noise)
        start.extend(v.numpy() for v in gan.generator.trainable_variables)

    logger.info("training %s: %s", label, description)
    with tempfile.TemporaryDirectory() as folder:
        result = training.fit(images, model, train, folder,
                              name, gan_hook=hook)
    end = [v.numpy() for v in result.gan.generator.trainable_variables]
    change = np.concatenate([np.abs(b - a).ravel() for a, b in zip(start, end)])
    return Run(name, label, description, train.pixel_range, train.g_learning_rate, result,
               float(np.median(change)) / train.g_learning_rate)


def final_losses(rows: list[dict]) -> tuple[float, float]:
    """Mean d_loss and g_loss over the last FINAL_SHARE of the logged rows (at least one)."""
    tail = rows[-max(1, round(FINAL_SHARE * len(rows))):]
    return (float(np.mean([row["d_loss"] for row in tail])),
            float(np.mean([row["g_loss"] for row in tail])))


def enlarged(image: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(image, grids.SCALE, axis=0), grids.SCALE, axis=1)


def table(runs: list[Run], scores: dict, floor: dict) -> str:
    lines = ["| run | steps | train wall s | d_loss | g_loss | median abs dW_G / lr "
             "| SWD 16 (x1e3) | SWD 32 (x1e3) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for run in runs:
        d_loss, g_loss = final_losses(run.result.log_rows)
        swd = scores[run.name]
        lines.append(f"| {run.label}: {run.description} | {run.result.log_rows[-1]['step']} | "
                     f"{run.result.seconds:.0f} | {d_loss:.4f} | {g_loss:.4f} | "
                     f"{run.weight_change:.3g} | {swd['swd_16']:.4g} | {swd['swd_32']:.4g} |")
    lines.append(f"| real data (floor) | | | | | | {floor['swd_16']:.4g} | "
                 f"{floor['swd_32']:.4g} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images_dir", type=Path)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("docs/book-recipe"))
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--snapshot-every", type=int, default=None,
                        help="default: a tenth of --steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--num-samples", type=int, default=None,
                        help="samples scored per run; default: params.yaml's sample section")
    parser.add_argument("--width", type=int, default=None, help="smoke tests only")
    parser.add_argument("--latent-dim", type=int, default=None, help="smoke tests only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    prepare, sample, evaluate_params = load_sections(args.params, "prepare", "sample",
                                                     "evaluate")
    evaluate_params = dataclasses.replace(evaluate_params, inception="off")
    num_samples = args.num_samples or sample.num_samples
    train_images, reference = read_image_folder(
        args.images_dir, holdout_fraction=prepare.holdout_fraction, seed=prepare.seed)
    snapshot_every = args.snapshot_every or max(1, args.steps // 10)
    cadence = {"iterations": args.steps, "seed": args.seed, "log_every": args.log_every,
               "snapshot_every": snapshot_every, "checkpoint_every": args.steps}

    shrink = {key: value for key, value in (("width", args.width),
                                            ("latent_dim", args.latent_dim)) if value}

    runs = []
    for name, label, description in RUNS:
        model, train = load_recipe("chollet", args.params,
                                   **cadence, **(BEFORE if name == "before" else {}))
        model = dataclasses.replace(model, **shrink)
        runs.append(train_run(name, label, description, train_images, model, train))

    args.out.mkdir(parents=True, exist_ok=True)
    scores, floor, sample_grids = {}, None, []
    for run in runs:
        samples, _ = draw_samples(run.result.gan.sampler, num_samples, sample.seed,
                                  sample.batch_size, run.pixel_range)
        evaluated = evaluate(samples, train_images, reference, evaluate_params)
        scores[run.name], floor = evaluated["generated"], evaluated["floor"]
        sample_grids.append((run.label, enlarged(grids.image_grid(samples[:GRID ** 2], GRID,
                                                                  GRID))))
        write_text(args.out / f"losses-{run.name}.csv",
                   train_log.rows_to_csv(run.result.log_rows))
        grids.save_png(args.out / f"progress-{run.name}.png",
                       grids.progress_grid(run.result.snapshots))
    plots.save_loss_comparison(args.out / "losses.png", {
        run.label: pandas.DataFrame(run.result.log_rows) for run in runs})
    grids.save_png(args.out / "samples.png", montage.labelled(sample_grids, "row"), scale=1)

    summary = table(runs, scores, floor)
    note = (f"recipes/chollet.yaml, {args.steps} steps each, seed {args.seed}, on "
            f"{os.cpu_count()} cores; {len(train_images)} training and {len(reference)} "
            f"reference images from {args.images_dir}; {num_samples} samples per run; "
            f"final losses: mean of the last {FINAL_SHARE:.0%} of logged rows")
    if shrink:
        note += f"; SHRUNK for a smoke test ({shrink}): these numbers mean nothing"
    write_text(args.out / "table.md", f"{note}\n\n{summary}\n")
    print(f"\n{note}\n\n{summary}\n\nfigures and logs: {args.out}/")


if __name__ == "__main__":
    main()
