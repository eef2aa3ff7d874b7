"""Trains a run's recipe once and scores its moving average at several lengths.

    python bench/training_length.py RUN_DIR --score-at 3400 4200 5400 [--seed 0]
                                    [--power-ema 4 16] [--ema 0.997] [--grid DIR]

RUN_DIR is a project folder after `dvc repro` (params.yaml, data/prepared/). Its recipe is
trained once, with train.seed set to --seed, up to the largest length of --score-at. Unless
train.learning_rate_ramp_down, train.r1_gamma_growth, train.augment_fade or train.late_share is
on, nothing in a step depends on train.iterations (each step's data and noise are a function
of the step alone), so the networks at step N are those of a run with `train.iterations=N`,
and each row scores what that run's pipeline would: the average's batch-norm statistics
recomputed from train.ema_bn_batches batches, then the sample and evaluate stages' samples
and scores. With any of them on, --score-at takes one length.

--power-ema also tracks power-function averages (Karras et al. 2024, "Analyzing and
Improving the Training Dynamics of Diffusion Models"), whose decay at step t is
(1 - 1/t)^(g + 1): each weighs the whole run by a fixed profile, a longer one for a smaller
g. The default's warmed-up average, min(train.ema, (1 + t) / (10 + t)), is close to g = 8
until its decay reaches train.ema. They are scored the same way beside the default's.

--ema tracks the default's own average with other values of train.ema, the same warm-up
min(d, (1 + t) / (10 + t)) from the same initial weights, so that one run scores several
caps on the same networks. Given the run's own train.ema, it repeats the default's row.

--branch-at STEP with --variant KEY=VALUE[,KEY=VALUE...] (once per variant) trains the recipe
to STEP once, then carries its networks, optimizers and averages on to the length of
--score-at as the run's params have it and again under each variant's train params, and
scores each at that length. A variant whose params act only after STEP, such as
train.augment_fade or train.learning_rate_ramp_down over the steps after it, scores what a
whole run with them would, for the steps after STEP alone.

--grid writes each row's samples to DIR as the top-left 4x4 corner of the grid that the
run's report would show (reports/samples.png), as docs/recipe-search.md prints them; with
--keep-samples, beside it, every sample it scored (an .npz whose `images` bench/colour.py and
other diagnostics read).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dcgan.cpu import sort_without_avx512  # noqa: E402

sort_without_avx512()  # scores as the evaluate stage does, before NumPy is imported

import numpy as np  # noqa: E402

from dcgan.artifacts import load_images, save_npz  # noqa: E402
from dcgan.dataset import StepIterators, make_datasets  # noqa: E402
from dcgan.engine import resolve_engine  # noqa: E402
from dcgan.errors import ParamsError  # noqa: E402
from dcgan.evaluation import evaluate  # noqa: E402
from dcgan.gan import GAN, average_decay, refresh_batch_norm_statistics, refresh_rng  # noqa: E402
from dcgan.grids import image_grid, save_png  # noqa: E402
from dcgan.models import build_generator, generator_input_size  # noqa: E402
from dcgan.params import TrainParams, apply_setting, load_sections, parse_section  # noqa: E402
from dcgan.progress import LogLines, progress_bar  # noqa: E402
from dcgan.sampling import draw_samples  # noqa: E402

CORNER = 4
LOG_INTERVAL = 60  # seconds between progress lines when stderr is a log, not a terminal


class MovingAverage:
    """A moving average of a model's trainable weights, kept in numpy, with the decay at each
    step given by `decay(step)`; the other weights (batch-norm statistics) follow the model's."""

    def __init__(self, decay, trainable: list[bool], weights: list[np.ndarray]):
        self.decay, self.trainable = decay, trainable
        self.weights = [w.copy() for w in weights]

    def update(self, step: int, weights: list[np.ndarray]) -> None:
        decay = self.decay(step)
        for i, (average, weight) in enumerate(zip(self.weights, weights)):
            if self.trainable[i]:
                average *= decay
                average += (1.0 - decay) * weight
            else:
                self.weights[i] = weight.copy()


def power_decay(exponent: float):
    """EDM2's power-function profile: (1 - 1/t)^(g + 1), 0 at step 1, so it starts there."""
    return lambda step: (1.0 - 1.0 / step) ** (exponent + 1.0)


def warmed_up_decay(cap: float):
    """The training loop's own decay (dcgan.gan.average_decay) with another cap."""
    return lambda step: average_decay(cap, np.float32(step)).numpy()


def parse_variant(text: str, train: TrainParams) -> TrainParams:
    """The run's train params with --variant's comma-separated train.KEY=VALUE changes."""
    params = {"train": {key: list(value) if isinstance(value, tuple) else value
                        for key, value in dataclasses.asdict(train).items()}}
    try:
        for change in text.split(","):
            apply_setting(params, change)
        return parse_section("train", params["train"])
    except ParamsError as error:
        sys.exit(f"error: --variant: {error}")


def carried_state(gan: GAN) -> dict[str, list]:
    """What a branch carries from the trunk: every variable of gan.state() but the optimizers'
    learning rates, which each variant sets from its own params (a schedule keeps none)."""
    return {owner: [variable for variable in variables
                    if not getattr(variable, "path", variable.name).endswith("learning_rate")]
            for owner, variables in gan.state().items()}


def carry(saved: dict[str, list[np.ndarray]], gan: GAN, step: int, label: str) -> None:
    """Sets `gan`'s variables to the trunk's `saved` values at `step`, owner by owner."""
    for owner, variables in carried_state(gan).items():
        if owner not in saved:
            continue  # a state the trunk does not keep starts where a whole run starts it
        values = saved[owner]
        if [v.shape for v in values] != [tuple(variable.shape) for variable in variables]:
            sys.exit(f"error: --variant {label!r} changes what {owner} holds, so it cannot "
                     "carry on from the trunk's networks")
        for variable, value in zip(variables, values):
            variable.assign(value)
    gan.step_counter.assign(step)


def corner(samples: np.ndarray, grid_size: int) -> np.ndarray:
    """The top-left CORNER x CORNER cells of the report's grid_size x grid_size samples grid."""
    side = min(CORNER, grid_size)
    cells = [row * grid_size + col for row in range(side) for col in range(side)]
    return image_grid(samples[[cell for cell in cells if cell < len(samples)]], side, side)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--score-at", type=int, nargs="+", required=True)
    parser.add_argument("--seed", type=int, default=0, help="train.seed of the run to train")
    parser.add_argument("--power-ema", type=float, nargs="*", default=[],
                        help="exponents g of power-function averages to score beside")
    parser.add_argument("--ema", type=float, nargs="*", default=[],
                        help="other caps d of the default's warmed-up average to score beside")
    parser.add_argument("--branch-at", type=int, metavar="STEP",
                        help="carry the networks at STEP on under each --variant")
    parser.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE,...",
                        help="train params to change from --branch-at on")
    parser.add_argument("--grid", type=Path, metavar="DIR",
                        help="write each row's corner of the samples grid to DIR")
    parser.add_argument("--keep-samples", action="store_true",
                        help="with --grid, write each row's samples to DIR too")
    args = parser.parse_args()

    run = args.run_dir
    model, train, sample, evaluate_params = load_sections(
        run / "params.yaml", "model", "train", "sample", "evaluate")
    if train.ema <= 0:
        sys.exit("error: the run's train.ema is 0; there is no moving average to score")
    if not all(0.0 < cap < 1.0 for cap in args.ema):
        sys.exit("error: --ema takes caps between 0 and 1, such as 0.997")
    for name, off in (("learning_rate_ramp_down", 0.0), ("r1_gamma_growth", 1.0),
                      ("augment_fade", 0.0), ("late_share", 0.0)):
        if getattr(train, name) != off and len(set(args.score_at)) > 1:
            sys.exit(f"error: the run's train.{name} makes every step depend on the run's "
                     "length; give --score-at one length")
    if args.keep_samples and not args.grid:
        sys.exit("error: --keep-samples writes beside --grid's images; give --grid DIR")
    if bool(args.variant) != (args.branch_at is not None):
        sys.exit("error: --branch-at and --variant come together")
    if args.branch_at is not None:
        if len(args.score_at) > 1 or args.ema or args.power_ema:
            sys.exit("error: --branch-at scores one length of --score-at, and no --ema or "
                     "--power-ema")
        if not 0 < args.branch_at < args.score_at[0]:
            sys.exit("error: --branch-at must lie between 0 and --score-at")
    train = dataclasses.replace(train, seed=args.seed, iterations=max(args.score_at))
    variants = {text: parse_variant(text, train) for text in args.variant}
    training_images = load_images(run / "data" / "prepared" / "train.npz")
    reference = load_images(run / "data" / "prepared" / "test.npz")
    gan = GAN(model, train, resolve_engine(train))
    iterators = StepIterators(make_datasets(training_images, train, generator_input_size(model),
                                            0))
    trainable = [variable.trainable for variable in gan.generator.variables]
    initial = [variable.numpy() for variable in gan.generator.variables]
    averages = {f"power g={g:g}": MovingAverage(power_decay(g), trainable, initial)
                for g in args.power_ema}
    averages.update({f"ema {d:g}": MovingAverage(warmed_up_decay(d), trainable, initial)
                     for d in args.ema})
    scorer = build_generator(model)

    def score(name: str, step: int, weights: list[np.ndarray], params=train) -> None:
        for variable, weight in zip(scorer.variables, weights):
            variable.assign(weight)
        refresh_batch_norm_statistics(scorer, params.ema_bn_batches, params.last_batch_size,
                                      refresh_rng(params.seed))
        samples, _ = draw_samples(scorer, sample.num_samples, sample.seed, sample.batch_size,
                                  params.pixel_range)
        scores = evaluate(samples, training_images, reference, evaluate_params)["generated"]
        swd = [f"{scores[key]:.2f}" + ("" if scores[f"{key}_error"] is None
                                       else f" ± {scores[f'{key}_error']:.2f}")
               for key in ("swd_16", "swd_32")]
        print(f"| {args.seed} | {step} | {name} | {swd[0]} | {swd[1]} "
              f"| {scores['memorisation']:.3f} | {scores['diversity']:.3f} |", flush=True)
        if args.grid:
            label = re.sub(r"[^\w.-]+", "-", name.replace("=", ""))
            path = args.grid / f"seed{args.seed}-{step}-{label}.png"
            save_png(path, corner(samples, evaluate_params.grid_size))
            if args.keep_samples:
                save_npz(path.with_suffix(".npz"), images=samples)

    print(f"{run}: train.seed {args.seed}, train.ema {train.ema}, batches of "
          f"{train.batch_size}, {sample.num_samples} samples\n")
    print("| seed | steps | average | SWD 16 | SWD 32 | nearest | pairwise |")
    print("| ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    branch_steps = (train.iterations - args.branch_at) * len(variants) if variants else 0
    progress = progress_bar(total=train.iterations + branch_steps, unit="step", desc="train")
    started, lines = time.perf_counter(), LogLines(LOG_INTERVAL)

    def log(step: int, metrics: dict, label: str = "") -> None:
        progress.update(1)
        now = time.perf_counter()
        if lines.due(now):
            chance = ("" if "augment_probability" not in metrics
                      else f", augment chance {float(metrics['augment_probability']):.3f}")
            print(f"train{label}: step {step} of {train.iterations}, {now - started:.0f} s"
                  f"{chance}", file=sys.stderr, flush=True)

    saved = None
    for step in range(1, train.iterations + 1):
        log(step, gan.step_fn(iterators.for_step(step)))
        if step == args.branch_at:
            saved = {owner: [variable.numpy() for variable in variables]
                     for owner, variables in carried_state(gan).items()}
        if averages:
            weights = [variable.numpy() for variable in gan.generator.variables]
            for average in averages.values():
                average.update(step, weights)
        if step in args.score_at:
            score("default", step, [variable.numpy() for variable in gan.ema_generator.variables])
            for name, average in averages.items():
                score(name, step, average.weights)
    for text, params in variants.items():
        gan = GAN(model, params, resolve_engine(params))
        carry(saved, gan, args.branch_at, text)
        iterators = StepIterators(make_datasets(training_images, params,
                                                generator_input_size(model), args.branch_at))
        for step in range(args.branch_at + 1, params.iterations + 1):
            log(step, gan.step_fn(iterators.for_step(step)), f" ({text})")
        score(f"default; from step {args.branch_at}: {text}", params.iterations,
              [variable.numpy() for variable in gan.ema_generator.variables], params)
    progress.close()


if __name__ == "__main__":
    main()
