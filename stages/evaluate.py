"""DVC stage `evaluate`: metrics with their real-data floors, image grids and a report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dcgan.cli import quiet_tensorflow, run
from dcgan.cpu import sort_without_avx512


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--samples", default="data/samples/samples.npz")
    parser.add_argument("--prepared", default="data/prepared")
    parser.add_argument("--models", default="models")
    parser.add_argument("--out", default="reports")
    args = parser.parse_args(argv)

    from dcgan.artifacts import load_images
    from dcgan.params import load_sections
    from dcgan.report import write_reports
    from dcgan.train_outputs import read_recipe

    (params,) = load_sections(args.params, "evaluate")
    prepared = Path(args.prepared)
    write_reports(
        samples=load_images(args.samples),
        training_images=load_images(prepared / "train.npz"),
        reference=load_images(prepared / "test.npz"),
        models_dir=Path(args.models),
        recipe=read_recipe(args.models),
        params=params,
        out_dir=Path(args.out),
    )


if __name__ == "__main__":
    quiet_tensorflow()
    sort_without_avx512()  # SWD sorts projections; before NumPy is imported
    sys.exit(run(main))
