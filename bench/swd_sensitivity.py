"""What each SWD level rewards: real images, blurred, sharpened, noised or flipped, scored.

    python bench/swd_sensitivity.py [--prepared data/prepared] [--draws 4] [--size 1000]
                                    [--samples data/samples/samples.npz] [--params params.yaml]

Takes the evaluate stage's floor draws of the training images in --prepared, alters every
image of them in one known way, and scores each altered set against the reference set with
the evaluate stage's SWD. The unaltered row is the floor, over --draws draws where reports
average ten. The rows say how far a known flaw moves each level, and which way: a level that
an altered set scores below the floor rewards that flaw, so a generated set under the floor
there is no proof of quality.

With --samples, the draws are disjoint sets of --size generated samples instead, as the
evaluate stage draws them: a row that scores below the unaltered one at both levels names a
flaw of the generator's (too sharp, say, if a blur helps).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dcgan.cpu import sort_without_avx512  # noqa: E402

sort_without_avx512()  # scores as the evaluate stage does, before NumPy is imported

import numpy as np  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402

from dcgan import metrics  # noqa: E402
from dcgan.artifacts import load_images  # noqa: E402
from dcgan.evaluation import _swd_scores, floor_draws, sample_draws  # noqa: E402
from dcgan.params import load_sections  # noqa: E402


def per_image(images: np.ndarray, change) -> np.ndarray:
    """`change` (a PIL image to a PIL image) applied to each uint8 RGB image."""
    return np.stack([np.asarray(change(Image.fromarray(image)).convert("RGB"))
                     for image in images])


def jpeg(quality: int):
    def change(image: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        return Image.open(io.BytesIO(buffer.getvalue()))
    return change


def noised(images: np.ndarray, sd: float, seed: int) -> np.ndarray:
    """Gaussian noise of `sd` grey levels (of 255) added to every pixel, then clipped."""
    noise = np.random.default_rng(seed).normal(0.0, sd, images.shape)
    return np.clip(np.rint(images + noise), 0, 255).astype(np.uint8)


# (name, function of a uint8 image batch and a seed)
ALTERATIONS = (
    ("none", lambda images, seed: images),
    ("left-right flip", lambda images, seed: images[:, :, ::-1]),
    ("Gaussian blur, radius 0.3 px",
     lambda images, seed: per_image(images, lambda i: i.filter(ImageFilter.GaussianBlur(0.3)))),
    ("Gaussian blur, radius 0.5 px",
     lambda images, seed: per_image(images, lambda i: i.filter(ImageFilter.GaussianBlur(0.5)))),
    ("Gaussian blur, radius 1 px",
     lambda images, seed: per_image(images, lambda i: i.filter(ImageFilter.GaussianBlur(1)))),
    ("unsharp mask, radius 1 px, 25 %", lambda images, seed: per_image(
        images, lambda i: i.filter(ImageFilter.UnsharpMask(1, 25, 0)))),
    ("unsharp mask, radius 1 px, 50 %", lambda images, seed: per_image(
        images, lambda i: i.filter(ImageFilter.UnsharpMask(1, 50, 0)))),
    ("noise, sd 2 of 255", lambda images, seed: noised(images, 2.0, seed)),
    ("noise, sd 4 of 255", lambda images, seed: noised(images, 4.0, seed)),
    ("noise, sd 8 of 255", lambda images, seed: noised(images, 8.0, seed)),
    ("JPEG, quality 50", lambda images, seed: per_image(images, jpeg(50))),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--draws", type=int, default=4)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--samples", type=Path, help="alter these generated samples instead")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    (params,) = load_sections(args.params, "evaluate")
    reference = load_images(args.prepared / "test.npz")
    if args.samples:
        samples = load_images(args.samples, min_count=args.draws * args.size)
        draws = sample_draws(samples, args.draws, args.size)
    else:
        draws = floor_draws(load_images(args.prepared / "train.npz"), args.draws, args.size,
                            params.seed)
    print(f"\n{args.draws} draws of {args.size} images from {args.samples or args.prepared}, "
          f"each altered, against {len(reference)} reference images; mean ± standard error\n")
    print("| alteration | " + " | ".join(f"SWD {level}" for level in metrics.SWD_LEVELS) + " |")
    print("| --- |" + " ---: |" * len(metrics.SWD_LEVELS))
    for name, alter in ALTERATIONS:
        (scores,) = _swd_scores([[alter(draw, index) for index, draw in enumerate(draws)]],
                                reference, params)
        print(f"| {name} | " + " | ".join(
            f"{scores[f'swd_{level}']:.2f} ± {scores[f'swd_{level}_error'] or 0:.2f}"
            for level in metrics.SWD_LEVELS) + " |", flush=True)
    print(f"\n{os.cpu_count()} cores")


if __name__ == "__main__":
    main()
