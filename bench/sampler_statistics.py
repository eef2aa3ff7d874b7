"""Scores a trained run's generator with its batch-norm statistics re-estimated in other ways.

    python bench/sampler_statistics.py RUN_DIR [--batches 16 256] [--draws own 11 12]

RUN_DIR is a project folder after `dvc repro` (params.yaml, models/, data/prepared/). For
each count in --batches and each draw in --draws, the saved moving average's statistics are
recomputed from that many batches of latent vectors (of the batch size the run ended at), as
the train stage does with train.ema_bn_batches; draw "own" uses the train stage's own latent
vectors, draw N those of a run with train.seed N. Each setting then samples and scores as the sample
and evaluate stages do. Training is untouched, so the differences between rows are the
estimate's alone: how much the refresh count matters, and how far one set of latent vectors
moves the scores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dcgan.cpu import sort_without_avx512  # noqa: E402

sort_without_avx512()  # scores as the evaluate stage does, before NumPy is imported

from dcgan.artifacts import load_images  # noqa: E402
from dcgan.evaluation import evaluate  # noqa: E402
from dcgan.gan import refresh_batch_norm_statistics, refresh_rng  # noqa: E402
from dcgan.params import load_sections  # noqa: E402
from dcgan.sampling import draw_samples, load_generator  # noqa: E402


def last_batch_size(recipe: dict) -> int:
    """The batch size the run ended at: train.late_batch_size where train.late_share is set."""
    return recipe["late_batch_size"] if recipe.get("late_share") else recipe["batch_size"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 256])
    parser.add_argument("--draws", nargs="+", default=["own"],
                        help='"own": the train stage\'s latent vectors; N: those of train.seed N')
    args = parser.parse_args()

    run = args.run_dir
    sample, evaluate_params = load_sections(run / "params.yaml", "sample", "evaluate")
    recipe = json.loads((run / "models" / "recipe.json").read_text())["train"]
    training_images = load_images(run / "data" / "prepared" / "train.npz")
    reference = load_images(run / "data" / "prepared" / "test.npz")
    print(f"{run}: train.seed {recipe['seed']}, train.ema {recipe['ema']}, batches of "
          f"{recipe['batch_size']}, {sample.num_samples} samples\n")
    print("| refresh batches | latent vectors | SWD 16 | SWD 32 | nearest | pairwise | seconds |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for count in args.batches:
        for draw in args.draws:
            seed = recipe["seed"] if draw == "own" else int(draw)
            generator = load_generator(run / "models" / "generator.keras")
            started = time.perf_counter()
            refresh_batch_norm_statistics(generator, count, last_batch_size(recipe),
                                          refresh_rng(seed))
            refreshed = time.perf_counter() - started
            samples, _ = draw_samples(generator, sample.num_samples, sample.seed,
                                      sample.batch_size, recipe["pixel_range"])
            scores = evaluate(samples, training_images, reference, evaluate_params)["generated"]
            print(f"| {count} | {draw} | {scores['swd_16']:.2f} ± {scores['swd_16_error']:.2f} "
                  f"| {scores['swd_32']:.2f} ± {scores['swd_32_error']:.2f} "
                  f"| {scores['memorisation']:.3f} | {scores['diversity']:.3f} "
                  f"| {refreshed:.1f} |", flush=True)


if __name__ == "__main__":
    main()
