"""DVC stage `sample`: draws images from the trained generator."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from dcgan.cli import quiet_tensorflow, run

PNG_COUNT = 64


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--models", default="models")
    parser.add_argument("--out", default="data/samples")
    args = parser.parse_args(argv)

    from PIL import Image

    from dcgan.artifacts import atomic_path, save_npz
    from dcgan.params import load_sections
    from dcgan.sampling import draw_samples, load_generator
    from dcgan.train_outputs import GENERATOR, read_recipe

    (params,) = load_sections(args.params, "sample")
    recipe = read_recipe(args.models)
    generator = load_generator(Path(args.models) / GENERATOR)
    images, latents = draw_samples(generator, params.num_samples, params.seed,
                                   params.batch_size, recipe["train"]["pixel_range"])
    with atomic_path(args.out) as tmp:
        (tmp / "png").mkdir(parents=True)
        save_npz(tmp / "samples.npz", images=images, latents=latents)
        for i, image in enumerate(images[:PNG_COUNT]):
            Image.fromarray(image).save(tmp / "png" / f"{i:04d}.png")
    logging.getLogger("dcgan").info("wrote %d samples to %s", len(images), args.out)


if __name__ == "__main__":
    quiet_tensorflow()
    sys.exit(run(main))
