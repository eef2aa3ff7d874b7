"""Trains the book's recipe and the default recipe for the same wall-clock budget, then scores both.

    python bench/quality.py IMAGES_DIR --minutes 30 [--out quality.png] [--params params.yaml]

IMAGES_DIR is a folder of images (for example the CIFAR-10 frogs as JPEG files); 10 % is held
out as the reference set, as `prepare` does with `source: images`. The two recipes train one
after the other on this machine, each for --minutes; each is then sampled and scored with the
evaluate stage's metrics, printed in one table beside the real-data floor. Both sample grids
are written side by side to --out.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dcgan.cpu import sort_without_avx512  # noqa: E402

sort_without_avx512()  # scores as the evaluate stage does, before NumPy is imported

import numpy as np  # noqa: E402

from dcgan import grids, training  # noqa: E402
from dcgan.evaluation import METRICS, evaluate  # noqa: E402
from dcgan.images import read_image_folder  # noqa: E402
from dcgan.params import load_sections  # noqa: E402
from dcgan.recipes import load_recipe  # noqa: E402
from dcgan.report import inception_model_for  # noqa: E402
from dcgan.sampling import draw_samples  # noqa: E402

RECIPES = (("book (chollet)", "chollet"), ("default (compact)", "compact"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images_dir", type=Path)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("quality.png"))
    args = parser.parse_args()

    import logging
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    prepare, sample, evaluate_params = load_sections(args.params, "prepare", "sample",
                                                     "evaluate")
    train_images, reference = read_image_folder(
        args.images_dir, holdout_fraction=prepare.holdout_fraction, seed=prepare.seed)
    inception_model, inception_note = inception_model_for(evaluate_params.inception)

    results, pictures = [], []
    for name, recipe in RECIPES:
        model, train = load_recipe(recipe, args.params)
        with tempfile.TemporaryDirectory() as folder:
            result = training.fit(train_images, model, train, folder,
                                  "bench",
                                  max_seconds=args.minutes * 60)
        result.gan.refresh_sampler_statistics()  # as the train stage does before saving
        samples, _ = draw_samples(result.gan.sampler, sample.num_samples, sample.seed,
                                  sample.batch_size, train.pixel_range)
        scores = evaluate(samples, train_images, reference, evaluate_params, inception_model)
        steps = result.last_step
        results.append((name, steps, train.images_seen(steps), result.seconds, scores))
        pictures.append(grids.image_grid(samples[:64], 8, 8))

    floor = results[0][4]["floor"]
    print(f"\n{args.minutes:g} minutes per recipe on {os.cpu_count()} cores; "
          f"{len(train_images)} training and {len(reference)} reference images; "
          f"{sample.num_samples} samples each; Inception: {inception_note}\n")
    header = " | ".join(name for name, *_ in results)
    print(f"| metric | {header} | real data (floor) |")
    print("| --- |" + " ---: |" * (len(results) + 1))
    print("| steps | " + " | ".join(str(r[1]) for r in results) + " | |")
    print("| images seen | " + " | ".join(str(r[2]) for r in results) + " | |")
    print("| train seconds | " + " | ".join(f"{r[3]:.0f}" for r in results) + " | |")
    for key, (label, better, _) in METRICS.items():
        values = " | ".join(_format(r[4]["generated"][key]) for r in results)
        print(f"| {label} ({better}) | {values} | {_format(floor[key])} |")
    gap = np.full((pictures[0].shape[0], 16, 3), 255, np.uint8)
    grids.save_png(args.out, np.concatenate([pictures[0], gap, pictures[1]], axis=1))
    print(f"\nsample grids, {results[0][0]} left and {results[1][0]} right: {args.out}")


def _format(value) -> str:
    return "n/a" if value is None else f"{value:.4g}"


if __name__ == "__main__":
    main()
