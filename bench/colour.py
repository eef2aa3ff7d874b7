"""Colour statistics of image sets: are generated images as colourful as the real ones?

    python bench/colour.py data/prepared/train.npz data/samples/samples.npz [more.npz ...]

Reads the `images` array of each .npz artifact (the prepare and sample stages write them) and
prints, with pixels in [0, 1]: the mean and standard deviation of each channel; the standard
deviation between images of each image's mean colour (how much colour varies from image to
image); the mean luminance contrast within an image; the mean spread between a pixel's
channels, max minus min (0 for grey, higher for saturated colour); and the mean absolute
difference between vertically adjacent pixels' luminance (sharpness); and the shares of
channel values at the ends of the range, 5 of 255 or under (black) and 250 or over (white),
where real photographs clip; and the detail spread, the standard deviation between images of
the log of each image's fine-detail amount (the root mean square of its luminance minus a 3x3
box blur of it, 2 pixels from the border), which is higher where some images are smooth and
others busy. The SWD scores say how far two sets are apart; these say in which direction
their colours and detail differ.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from dcgan.artifacts import load_images  # noqa: E402


def colour_stats(images: np.ndarray) -> dict[str, np.ndarray | float]:
    """The statistics above for uint8 images of shape (n, height, width, 3)."""
    pixels = images.astype(np.float64) / 255.0
    luminance = pixels.mean(axis=-1)
    return {
        "channel mean": pixels.mean(axis=(0, 1, 2)),
        "channel sd": pixels.std(axis=(0, 1, 2)),
        "image colour sd": pixels.mean(axis=(1, 2)).std(axis=0),
        "contrast": float(luminance.std(axis=(1, 2)).mean()),
        "channel spread": float((pixels.max(axis=-1) - pixels.min(axis=-1)).mean()),
        "sharpness": float(np.abs(np.diff(luminance, axis=1)).mean()),
        "black share": float((images <= 5).mean()),
        "white share": float((images >= 250).mean()),
        "detail spread": float(np.log(np.maximum(_detail_amount(luminance), 1e-6)).std()),
    }


def _detail_amount(luminance: np.ndarray) -> np.ndarray:
    """Per image, the root mean square of its luminance minus a 3x3 box blur of it, 2 pixels
    from the border, where the blur sees no padding."""
    side = luminance.shape[1]
    blurred = sum(luminance[:, 1 + dy:side - 1 + dy, 1 + dx:side - 1 + dx]
                  for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9.0
    detail = (luminance[:, 1:-1, 1:-1] - blurred)[:, 1:-1, 1:-1]
    return np.sqrt((detail ** 2).mean(axis=(1, 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", type=Path, nargs="+", help=".npz files with `images`")
    args = parser.parse_args()
    for path in args.artifacts:
        images = load_images(path)
        print(f"{path} ({len(images)} images)")
        for name, value in colour_stats(images).items():
            shown = np.array2string(np.asarray(value), precision=3, floatmode="fixed")
            print(f"  {name:16s} {shown}")


if __name__ == "__main__":
    main()
