"""DVC stage `train`: trains the GAN on the prepared images, resuming from its checkpoint."""

from __future__ import annotations

import argparse
import sys

from dcgan.cli import quiet_tensorflow, run


def _steps(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a step number >= 0, found {value}")
    return value


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data/prepared/train.npz")
    parser.add_argument("--checkpoints", default="checkpoints")
    parser.add_argument("--out", default="models")
    parser.add_argument("--stop-after", type=_steps, default=None,
                        help="stop after this step as if interrupted (the checkpoint stays)")
    args = parser.parse_args(argv)

    from dcgan import artifacts
    from dcgan.params import load_sections
    from dcgan.train_outputs import save_outputs
    from dcgan.training import fit

    model_params, train_params = load_sections(args.params, "model", "train")
    images = artifacts.load_images(args.data)
    result = fit(images, model_params, train_params, args.checkpoints,
                 artifacts.file_digest(args.data), stop_after=args.stop_after)
    if args.stop_after is None or args.stop_after >= train_params.iterations:
        save_outputs(result, args.out)


if __name__ == "__main__":
    quiet_tensorflow()
    sys.exit(run(main))
