"""How much SWD moves with evaluate.seed alone, beside the standard error reports print.

    python bench/swd_seeds.py --samples data/samples/samples.npz [--prepared data/prepared]
                              [--seeds 5] [--params params.yaml]

evaluate.seed fixes where SWD's patches are cut from each scored image and the directions it
projects them on. Each draw of samples (and of training images, the floor) takes its own
patches and directions, and the reference set gives every patch it has, so the standard error
that reports print holds what those choices add. This benchmark scores the samples in
--samples as the evaluate stage does (disjoint draws of evaluate.swd_draw_size), and the
floor, with evaluate.seed 0 to --seeds - 1, and prints the spread of the means over the seeds
beside the mean of the printed errors. The samples' draws hold the same images under every
seed, so there an honest error is at least as large as that spread; the floor's draws change
with the seed, so there the two should be about equal.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dcgan.cpu import sort_without_avx512  # noqa: E402

sort_without_avx512()  # scores as the evaluate stage does, before NumPy is imported

import numpy as np  # noqa: E402

from dcgan import metrics  # noqa: E402
from dcgan.artifacts import load_images  # noqa: E402
from dcgan.evaluation import _swd_scores, draws_of, floor_draws, sample_draws  # noqa: E402
from dcgan.params import load_sections  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, required=True)
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    if args.seeds < 2:
        sys.exit("error: --seeds must be at least 2 to show a spread")
    (params,) = load_sections(args.params, "evaluate")
    reference = load_images(args.prepared / "test.npz")
    training_images = load_images(args.prepared / "train.npz")
    samples = load_images(args.samples)
    count, size = draws_of(len(samples), min(params.swd_draw_size, len(training_images)))
    if count < 2:
        sys.exit(f"error: {len(samples)} samples make one draw of {size}; a standard error "
                 "needs at least two")
    draws = sample_draws(samples, count, size)
    print(f"\n{args.samples}: {count} draws of {size} against {len(reference)} reference "
          f"images; the floor: {count} draws of {size} training images ({args.prepared})\n")
    print("| evaluate.seed | samples SWD 16 | samples SWD 32 | floor SWD 16 | floor SWD 32 |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    columns = [(part, level) for part in ("samples", "floor") for level in metrics.SWD_LEVELS[::-1]]
    means = {column: [] for column in columns}
    errors = {column: [] for column in columns}
    for seed in range(args.seeds):
        seeded = dataclasses.replace(params, seed=seed)
        scores = dict(zip(("samples", "floor"), _swd_scores(
            [draws, floor_draws(training_images, count, size, seed)], reference, seeded)))
        for part, level in columns:
            means[part, level].append(scores[part][f"swd_{level}"])
            errors[part, level].append(scores[part][f"swd_{level}_error"])
        print(f"| {seed} | " + " | ".join(
            f"{means[column][-1]:.2f} ± {errors[column][-1]:.2f}" for column in columns) + " |",
            flush=True)
    print("| sd of the means | " + " | ".join(
        f"{np.std(means[column], ddof=1):.2f}" for column in columns) + " |")
    print("| mean printed error | " + " | ".join(
        f"{np.mean(errors[column]):.2f}" for column in columns) + " |")
    print(f"\n{os.cpu_count()} cores")


if __name__ == "__main__":
    main()
