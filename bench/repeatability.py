"""Whether two runs of the train stage with the same params repeat step for step on this CPU.

    python bench/repeatability.py [--params params.yaml] [--data data/prepared/train.npz]
                                  [--steps 300] [-S train.KEY=VALUE ...]

Runs `python -m stages.train` twice, each in a fresh process, for --steps steps of the params
with the -S changes (as `dvc exp run -S` takes them), logging every 10 steps, and compares the
two train logs' losses and accuracies. Prints the first logged step at which they part, or that
they agree at every one, and each run's time a step. The environment passes through, so
`TF_ENABLE_ONEDNN_OPTS=0` runs both without TensorFlow's oneDNN kernels. For example, on a
2-core AMD EPYC (Zen 5) the default's batch-64 steps part by step 10 without XLA, with oneDNN
or without, and repeat with it (docs/recipe-search.md, round 39):

    python bench/repeatability.py -S train.batch_size=64 -S train.late_share=0 \\
        -S train.late_batch_size=0 -S train.jit_compile=off
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ruamel.yaml import YAML  # noqa: E402

from dcgan.errors import ParamsError  # noqa: E402
from dcgan.params import apply_setting, read_params_file  # noqa: E402

COMPARED = ("d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy")


def changed_params(path: Path, steps: int, changes: list[str]) -> dict:
    """The params at `path` with `steps` iterations, a log row every 10 steps and `changes`."""
    try:
        params = read_params_file(path)
    except ParamsError as error:
        sys.exit(f"error: --params {error}")
    params["train"].update(iterations=steps, log_every=10)
    for change in changes:
        try:
            apply_setting(params, change)
        except ParamsError as error:
            sys.exit(f"error: -S {error} ({path})")
    return params


def train_log(params_path: Path, data: Path, folder: Path) -> list[dict]:
    """Runs the train stage on fresh folders under `folder`; returns its train log's rows."""
    command = [sys.executable, "-m", "stages.train", "--params", str(params_path),
               "--data", str(data), "--checkpoints", str(folder / "checkpoints"),
               "--out", str(folder / "models")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"error: the train stage failed: {done.stderr.strip().splitlines()[-1]}")
    with open(folder / "models" / "train_log.csv", newline="") as file:
        return list(csv.DictReader(file))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "prepared" / "train.npz")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("-S", "--set", dest="changes", action="append", default=[],
                        metavar="SECTION.KEY=VALUE")
    args = parser.parse_args()
    if args.steps < 10:
        sys.exit("error: --steps must be at least 10, the interval of the logged rows")
    if not args.data.is_file():
        sys.exit(f"error: --data {args.data}: no such file; run `dvc repro prepare` first or "
                 "name a prepared train.npz")
    params = changed_params(args.params, args.steps, args.changes)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        params_path = folder / "params.yaml"
        YAML(typ="safe", pure=True).dump(params, params_path)
        runs = [train_log(params_path, args.data, folder / name) for name in ("a", "b")]
    for name, rows in zip("ab", runs):
        if len(rows) > 1:  # from the first logged step on, past the step's compilation
            steps = int(rows[-1]["step"]) - int(rows[0]["step"])
            seconds = float(rows[-1]["seconds"]) - float(rows[0]["seconds"])
            print(f"run {name}: {1000 * seconds / steps:.0f} ms a step after step "
                  f"{rows[0]['step']}")
    for first, second in zip(*runs):
        if any(first[key] != second[key] for key in COMPARED):
            print(f"the runs part by step {first['step']}: d_loss {first['d_loss']} against "
                  f"{second['d_loss']}, g_loss {first['g_loss']} against {second['g_loss']}")
            return
    print(f"the runs agree at every logged step, {len(runs[0])} rows to the last digit")


if __name__ == "__main__":
    main()
