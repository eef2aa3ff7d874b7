"""How much SWD moves from one draw of images to the next: one trained generator, many draws.

    python bench/swd_noise.py [--models models] [--prepared data/prepared] [--draws 6]
                              [--size 1000] [--params params.yaml]

Draws --draws sets of --size samples from the trained generator in --models (sample seeds
0, 1, ...) and as many of the evaluate stage's floor draws of the training images in
--prepared, and scores each against the reference set with the evaluate stage's SWD, each
draw with its own patches and projection directions as there. Prints every draw, the spread
of single draws and the standard error of their mean: what decides how many draws the
evaluate stage averages (evaluate.swd_draw_size, sample.num_samples).
"""

from __future__ import annotations

import argparse
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
from dcgan.evaluation import floor_draws  # noqa: E402
from dcgan.params import load_sections  # noqa: E402
from dcgan.sampling import draw_samples, load_generator  # noqa: E402
from dcgan.train_outputs import GENERATOR, read_recipe  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--draws", type=int, default=6)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    (params,) = load_sections(args.params, "evaluate")
    reference = load_images(args.prepared / "test.npz")
    training_images = load_images(args.prepared / "train.npz")
    generator = load_generator(args.models / GENERATOR)
    pixel_range = read_recipe(args.models)["train"]["pixel_range"]
    sets = {
        "generated": [draw_samples(generator, args.size, seed, 250, pixel_range)[0]
                      for seed in range(args.draws)],
        "floor": floor_draws(training_images, args.draws, args.size, params.seed),
    }
    print(f"\n{args.draws} draws of {args.size} images against {len(reference)} reference "
          f"images ({args.models})\n")
    print("| images | level | draws | mean | spread of one draw (sd) | standard error of the "
          "mean |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    # Draw i of both sets is scored as draw i, as the evaluate stage does: one projection of the
    # reference serves both.
    swds = metrics.sliced_wasserstein_distances(
        [draw for draws in sets.values() for draw in draws], reference,
        patches_per_image=params.swd_patches_per_image, num_projections=params.swd_projections,
        seed=params.seed, draws=list(range(args.draws)) * len(sets))
    for index, name in enumerate(sets):
        for level in metrics.SWD_LEVELS:
            values = np.array([swd[level] for swd in swds[index * args.draws:
                                                             (index + 1) * args.draws]])
            print(f"| {name} | SWD {level} | {', '.join(f'{v:.1f}' for v in values)} | "
                  f"{values.mean():.2f} | {values.std(ddof=1):.2f} | "
                  f"{values.std(ddof=1) / np.sqrt(len(values)):.2f} |")
    print(f"\n{os.cpu_count()} cores")


if __name__ == "__main__":
    main()
