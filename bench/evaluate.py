"""Times the evaluate stage's metrics on 10000 samples against 1000 reference images.

    python bench/evaluate.py [--samples 10000] [--reference 1000] [--train 5000]

SWD (the mean over draws of evaluate.swd_draw_size), memorisation and diversity for the
samples and for the real-data floor, Inception off, as the evaluate stage computes them with
the committed params.yaml, NumPy's sort in AVX2 on a Zen 4 as there. The images are smooth
random colour fields with noise, which cost the same to score as photographs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dcgan.cpu import sort_without_avx512  # noqa: E402

sort_without_avx512()  # as the evaluate stage does, before NumPy is imported

import numpy as np  # noqa: E402

from dcgan.evaluation import evaluate  # noqa: E402
from dcgan.params import load_sections  # noqa: E402


def smooth_images(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (count, 8, 8, 3)).astype(np.int16)
    fine = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)
    return np.clip(fine + rng.integers(-8, 9, fine.shape), 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--reference", type=int, default=1000)
    parser.add_argument("--train", type=int, default=5000)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    (params,) = load_sections(args.params, "evaluate")
    params = dataclasses.replace(params, inception="off")
    samples = smooth_images(args.samples, 0)
    train = smooth_images(args.train, 1)
    reference = smooth_images(args.reference, 2)
    started = time.perf_counter()
    evaluate(samples, train, reference, params)
    seconds = time.perf_counter() - started
    print("\n| samples | reference | train | SWD draw size | SWD patches/image | projections "
          "| seconds |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| {args.samples} | {args.reference} | {args.train} | {params.swd_draw_size} | "
          f"{params.swd_patches_per_image} | {params.swd_projections} | {seconds:.1f} |")
    print(f"\n{os.cpu_count()} cores; goal: at most 60 s")


if __name__ == "__main__":
    main()
