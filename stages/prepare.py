"""Stage `prepare`: writes the training and reference images as train.npz and test.npz."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from dcgan.cli import quiet_tensorflow, run

quiet_tensorflow()  # Before anything below can import TensorFlow.

from dcgan import cifar, images  # noqa: E402
from dcgan.artifacts import atomic_path, check_images, save_npz  # noqa: E402
from dcgan.params import PrepareParams, load_sections  # noqa: E402

logger = logging.getLogger("dcgan.prepare")


def load_split(params: PrepareParams):
    """Returns (training, reference) images from the source that `params.source` names."""
    if params.source == "cifar10":
        archive = cifar.download_archive(params.url, params.md5)
        return cifar.read_cifar10_class(archive, params.class_name)
    return images.read_image_folder(params.images_dir, holdout_fraction=params.holdout_fraction,
                                    seed=params.seed)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml", help="the params file")
    parser.add_argument("--out", default="data/prepared",
                        help="the folder to write train.npz and test.npz to")
    args = parser.parse_args(argv)

    (params,) = load_sections(args.params, "prepare")
    training_images, reference = load_split(params)
    check_images(training_images, "prepared training images")
    check_images(reference, "prepared reference images")
    # The folder appears whole or not at all, so DVC never caches half of it.
    with atomic_path(args.out) as tmp:
        tmp.mkdir()
        save_npz(tmp / "train.npz", images=training_images)
        save_npz(tmp / "test.npz", images=reference)
    source = (params.images_dir if params.source == "images"
              else f"class {params.class_name} of {params.url}")
    logger.info("%d training and %d reference images from %s written to %s",
                len(training_images), len(reference), source, args.out)


if __name__ == "__main__":
    sys.exit(run(main))
