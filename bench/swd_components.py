"""What SWD's gap is made of: its patches' principal components, one at a time.

    python bench/swd_components.py [--prepared data/prepared] [--level 32]
                                   [--samples data/samples/samples.npz] [--components 40]

SWD projects normalised 7x7 patches of one Laplacian level on random directions and sums the
gaps between the projections' distributions. This script projects them on the reference
set's principal directions instead, the largest first, and prints for each the gap (the 1-D
Wasserstein distance, times 1e3 as SWD is), the variance as a share of the reference's and the
kurtosis (3 for a Gaussian; higher for a sparse pattern, one that most patches lack and a few
carry strongly). It does so for 1000 training images, whose rows show what chance alone gives,
and for the first 1000 samples. Each component is described by where its luminance spectrum
peaks, in cycles per pixel (0.5: the finest pattern a pixel grid holds), and by its share of
colour, what it carries besides the patch's grey.
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

PATCH = 7
SET_SIZE = 1000
PATCHES_PER_IMAGE = 64


def descriptors(images: np.ndarray, level: int, every: bool, seed: int) -> np.ndarray:
    """The evaluate stage's normalised patch rows (channel, row, column) of one level."""
    return metrics._patch_descriptors(images, level, PATCH, None if every else PATCHES_PER_IMAGE,
                                      np.random.default_rng(seed))


def kurtosis(values: np.ndarray) -> float:
    centred = values - values.mean()
    return float((centred ** 4).mean() / (centred ** 2).mean() ** 2)


def describe(direction: np.ndarray) -> tuple[float, float, float]:
    """(vertical, horizontal) frequency of the luminance spectrum's peak, and the colour share."""
    patch = direction.reshape(3, PATCH, PATCH)
    grey = patch.mean(axis=0)
    colour = float(((patch - grey) ** 2).sum() / (patch ** 2).sum())
    size = 2 * PATCH
    spectrum = np.abs(np.fft.fft2(grey, s=(size, size)))
    row, column = np.unravel_index(spectrum.argmax(), spectrum.shape)
    return min(row, size - row) / size, min(column, size - column) / size, colour


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--samples", type=Path, default=Path("data/samples/samples.npz"))
    parser.add_argument("--level", type=int, choices=metrics.SWD_LEVELS, default=32)
    parser.add_argument("--components", type=int, default=40)
    args = parser.parse_args()
    level = metrics.SWD_LEVELS.index(args.level)

    reference = descriptors(load_images(args.prepared / "test.npz"), level, every=True, seed=0)
    values, vectors = np.linalg.eigh(np.cov(reference, rowvar=False))
    order = np.argsort(values)[::-1][:args.components]
    values, vectors = values[order], vectors[:, order]
    sets = {"training": load_images(args.prepared / "train.npz")[:SET_SIZE],
            "samples": load_images(args.samples)[:SET_SIZE]}
    patches = {name: descriptors(images, level, every=False, seed=1)
               for name, images in sets.items()}
    projected = {name: rows @ vectors for name, rows in patches.items()}
    on_reference = reference @ vectors

    print(f"SWD {args.level}'s patches on the reference's principal directions: gap x1e3, "
          f"variance against the reference's, kurtosis")
    print("| component | variance | peak (cycles/px) | colour | reference kurtosis | "
          + " | ".join(f"{name} gap, variance, kurtosis" for name in sets) + " |")
    print("| ---: | ---: | --- | ---: | ---: | " + " | ".join("---" for _ in sets) + " |")
    totals = dict.fromkeys(sets, 0.0)
    for k in range(len(values)):
        vertical, horizontal, colour = describe(vectors[:, k])
        reference_k = on_reference[:, k]
        # The gap as the evaluate stage's SWD measures it, on this one direction.
        gaps = metrics._sliced_wasserstein(list(patches.values()), reference,
                                             vectors[:, k][None].astype(np.float32))
        cells = []
        for (name, rows), gap in zip(projected.items(), gaps):
            gap *= 1e3
            totals[name] += gap
            cells.append(f"{gap:.1f}, {rows[:, k].var() / reference_k.var():.2f}, "
                         f"{kurtosis(rows[:, k]):.2f}")
        print(f"| {k} | {values[k]:.2f} | ({vertical:.2f}, {horizontal:.2f}) | {colour:.2f} | "
              f"{kurtosis(reference_k):.2f} | " + " | ".join(cells) + " |")
    print("\nsummed gaps: " + ", ".join(f"{name} {total:.0f}" for name, total in totals.items()))


if __name__ == "__main__":
    main()
