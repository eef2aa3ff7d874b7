"""Reads a folder of pictures into 32x32 RGB arrays split into training and reference sets."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from dcgan.errors import DataError, one_line
from dcgan.pixels import IMAGE_SHAPE, IMAGE_SIZE
from dcgan.progress import progress_bar

logger = logging.getLogger(__name__)

EXTENSIONS = (".png", ".jpg", ".jpeg")
# The most pixels decoded for one image, 8192x8192: more than an 8K video frame (33 million)
# or a 61-megapixel camera's photo, which as a JPEG is decoded at 1/8 scale anyway. Pillow
# keeps 4 bytes per RGB or RGBA pixel, so one image then takes at most 270 MB before its
# conversion to RGB, and the limit stays under the 89 million pixels at which Pillow warns.
MAX_PIXELS = 8192 * 8192


def find_images(folder: Path) -> list[Path]:
    """Returns the png and jpeg files under `folder`, at any depth, in sorted path order."""
    found = []
    for root, _dirs, files in os.walk(folder):
        found.extend(Path(root, name) for name in files
                     if name.lower().endswith(EXTENSIONS))
    return sorted(found, key=lambda path: path.relative_to(folder).as_posix())


def load_square(path: Path, size: int = IMAGE_SIZE) -> np.ndarray:
    """Loads one image as uint8 RGB (size, size, 3): centre-cropped, then resized antialiased.

    Raises:
        DataError: the file cannot be decoded as an image, would decode to more than
            MAX_PIXELS pixels, or holds 32-bit samples of unknown range.
    """
    try:
        # Pillow warns as it opens an image over its own size limit; the check against
        # MAX_PIXELS below refuses such an image instead, in words that say what to do.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            # A JPEG can decode straight at 1/2, 1/4 or 1/8 scale; asking for at least four
            # times the final size keeps the antialiasing of the resize below while sparing
            # full decodes of large photos.
            image.draft("RGB", (4 * size, 4 * size))
            # The size comes from the file's header, and for a JPEG from the scale chosen
            # above, so an image too large is refused before any of it is decoded.
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise DataError(f"{path}: {width}x{height} pixels, over the limit of "
                                f"{MAX_PIXELS} pixels decoded per image; scale it down or "
                                f"remove it")
            sixteen_bit_grey = _is_sixteen_bit_grey(image)
            if not sixteen_bit_grey and image.mode in ("I", "F"):
                raise DataError(f"{path}: {image.format} image of 32-bit mode {image.mode!r}, "
                                f"whose pixel range is unknown; save it as an 8- or 16-bit PNG "
                                f"or as a JPEG")
            image = ImageOps.exif_transpose(image)
            image = _scale_to_8_bits(image) if sixteen_bit_grey else image.convert("RGB")
            width, height = image.size
            side = min(width, height)
            left, top = (width - side) // 2, (height - side) // 2
            if (width, height) != (size, size):
                image = image.resize((size, size), Image.Resampling.LANCZOS,
                                     box=(left, top, left + side, top + side),
                                     reducing_gap=3.0)
            return np.asarray(image, dtype=np.uint8)
    except Image.DecompressionBombError:
        # Pillow refuses, as it opens them, images of more than twice its warning size.
        raise DataError(f"{path}: more than {2 * Image.MAX_IMAGE_PIXELS} pixels, over the "
                        f"limit of {MAX_PIXELS} pixels decoded per image; scale it down or "
                        f"remove it") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise DataError(f"{path}: not a readable image ({one_line(error)}); "
                        f"remove or replace the file") from None


def _is_sixteen_bit_grey(image: Image.Image) -> bool:
    # Pillow opens a 16-bit greyscale PNG as mode "I;16", or as "I" before Pillow 10.3, and its
    # convert("RGB") clips those values at 255 instead of scaling them. A 16-bit colour PNG, or
    # greyscale with alpha, needs nothing: Pillow opens it as RGB or RGBA holding the high
    # byte of each sample, which is within one level of scaling.
    return (image.mode in ("I;16", "I;16B", "I;16L")
            or (image.mode == "I" and image.format == "PNG"))


def _scale_to_8_bits(image: Image.Image) -> Image.Image:
    """Turns 16-bit greyscale into 8-bit RGB: round(value * 255 / 65535), that is value / 257."""
    samples = np.asarray(image).astype(np.uint32)
    return Image.fromarray(((samples + 128) // 257).astype(np.uint8)).convert("RGB")


def read_image_folder(path: str | os.PathLike, *, holdout_fraction: float,
                      seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Reads every png/jpg/jpeg under `path` and splits off a seeded reference set.

    Args:
        path: The folder; subfolders are searched too.
        holdout_fraction: The share of images, rounded to a whole number, that goes to the
            reference (test) set.
        seed: Seeds the shuffle that picks the reference images.

    Returns:
        (train, test): uint8 RGB arrays of shape (N, 32, 32, 3), each in sorted path order.

    Raises:
        DataError: the folder is missing or holds no images, an image cannot be read, or the
            split would leave the training or the reference set empty.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder not found (prepare.images_dir)")
    paths = find_images(folder)
    if not paths:
        raise DataError(f"{folder}: no .png, .jpg or .jpeg files found (prepare.images_dir)")
    num_test = round(holdout_fraction * len(paths))
    if not 0 < num_test < len(paths):
        raise DataError(
            f"{folder}: prepare.holdout_fraction {holdout_fraction} of {len(paths)} images "
            f"leaves {num_test} reference and {len(paths) - num_test} training images; "
            f"both need at least one, so add images or change prepare.holdout_fraction")

    logger.info("%s: reading %d images", folder, len(paths))
    images = np.empty((len(paths), *IMAGE_SHAPE), dtype=np.uint8)
    progress = progress_bar(paths, desc="reading images", unit="image", leave=False)
    for index, image_path in enumerate(progress):
        images[index] = load_square(image_path)

    is_test = np.zeros(len(paths), dtype=bool)
    is_test[np.random.default_rng(seed).permutation(len(paths))[:num_test]] = True
    return images[~is_test], images[is_test]
