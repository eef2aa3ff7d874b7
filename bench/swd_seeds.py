"""How much SWD moves with evaluate.seed alone: the same images, other patches and projections.

    python bench/swd_seeds.py --samples data/samples/samples.npz [--prepared data/prepared]
                              [--seeds 5] [--params params.yaml]

evaluate.seed fixes where SWD's patches are cut from each image and the directions it projects
them on; the reference set's patches are cut once and serve every draw. The standard error
that reports print is over the draws of samples, each scored against those same reference
patches, so it leaves out what the choice of patches and directions adds. This benchmark
scores the samples in --samples (as the evaluate stage does: disjoint draws of
evaluate.swd_draw_size) and the floor with evaluate.seed 0 to --seeds - 1, then splits the
spread at each level: the reference's patches drawn anew with the samples' kept, the samples'
drawn anew with the reference's kept, and the directions drawn anew alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from dcgan import metrics  # noqa: E402
from dcgan.artifacts import load_images  # noqa: E402
from dcgan.evaluation import _swd_scores, draws_of, floor_draws  # noqa: E402
from dcgan.params import load_sections  # noqa: E402

PATCH_SIZE = 7  # the evaluate stage's, metrics.sliced_wasserstein_distances' default


def descriptors(images, params, level: int, seed: int) -> np.ndarray:
    return metrics._patch_descriptors(images, level, params.swd_patches_per_image, PATCH_SIZE,
                                      seed)


def mean_swd(reference_descriptors, draw_descriptors, params, level: int,
             direction_seed: int) -> float:
    """The mean SWD over the draws' descriptors, projected on directions from their own seed."""
    directions = metrics._directions(params.swd_projections, reference_descriptors.shape[1],
                                     np.random.default_rng([direction_seed, level, 1]))
    sorted_reference = metrics._sorted_projections(reference_descriptors, directions)
    return float(np.mean([1e3 * metrics._sliced_wasserstein(
        metrics._sorted_projections(draw, directions), sorted_reference)
        for draw in draw_descriptors]))


def spread(values: list[float]) -> str:
    return f"{', '.join(f'{v:.2f}' for v in values)} (sd {np.std(values, ddof=1):.2f})"


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
    draws = [samples[i * size:(i + 1) * size] for i in range(count)]
    print(f"\n{args.samples}: {count} draws of {size} against {len(reference)} reference "
          f"images; the floor: {count} draws of {size} training images ({args.prepared})\n")
    print("| evaluate.seed | samples SWD 16 | samples SWD 32 | floor SWD 16 | floor SWD 32 |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for seed in range(args.seeds):
        seeded = dataclasses.replace(params, seed=seed)
        generated = _swd_scores(draws, reference, seeded)
        floor = _swd_scores(floor_draws(training_images, count, size, seed), reference, seeded)
        print(f"| {seed} | " + " | ".join(
            f"{scores[f'swd_{level}']:.2f} ± {scores[f'swd_{level}_error'] or 0:.2f}"
            for scores in (generated, floor) for level in (16, 32)) + " |", flush=True)
    print("\nThe samples' mean SWD with one random part drawn with seeds 0 to "
          f"{args.seeds - 1}, the others with seed {params.seed}:\n")
    print("| level | reference's patches | samples' patches | directions |")
    print("| --- | --- | --- | --- |")
    for level, resolution in enumerate(metrics.SWD_LEVELS):
        seeds, fixed = range(args.seeds), params.seed
        # The parts kept at evaluate.seed are cut once and serve all three rows.
        reference_kept = descriptors(reference, params, level, fixed)
        draws_kept = [descriptors(draw, params, level, fixed) for draw in draws]
        rows = [[mean_swd(descriptors(reference, params, level, s), draws_kept, params, level,
                          fixed) for s in seeds],
                [mean_swd(reference_kept, [descriptors(draw, params, level, s) for draw in draws],
                          params, level, fixed) for s in seeds],
                [mean_swd(reference_kept, draws_kept, params, level, s) for s in seeds]]
        print(f"| SWD {resolution} | " + " | ".join(spread(row) for row in rows) + " |",
              flush=True)
    print(f"\n{os.cpu_count()} cores")


if __name__ == "__main__":
    main()
