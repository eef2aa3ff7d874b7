"""Named recipes: complete model and train settings kept as files, run as DVC experiments.

    python -m dcgan.recipes chollet [--dry-run] [dvc exp run options, e.g. --queue -n book]

runs `dvc exp run` with one `-S section.key=value` per key of recipes/chollet.yaml, so the
experiment's params.yaml, `dvc exp show` and `dvc params diff` show every value of the recipe.
The keys that say how a run is carried out (seed, logging, devices) keep params.yaml's values.
A path to a YAML file of one's own works as well as a name.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from dcgan.errors import ParamsError
from dcgan.params import parse_section, read_params_file, recipe_keys

RECIPE_DIR = Path("recipes")
SECTIONS = ("model", "train")


def recipe_path(name: str, root: str | os.PathLike = ".") -> Path:
    """The file a recipe name stands for: a path as given, else recipes/<name>.yaml in root."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or os.sep in name:
        return path
    return Path(root) / RECIPE_DIR / f"{name}.yaml"


def read_recipe(path: str | os.PathLike, params_path: str | os.PathLike) -> dict[str, dict]:
    """Reads a recipe file and checks it against the params schema.

    The recipe must set exactly the recipe keys of each section; its values are checked as
    params.yaml's would be, merged with params.yaml's other keys.

    Raises:
        ParamsError: the file is missing or unreadable, a section or key is missing or
            unknown, or a value is bad. The message names the file and the key.
    """
    path = Path(path)
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in path.parent.glob("*.yaml"))) or "none"
        raise ParamsError(f"{path}: recipe not found; the recipes in {path.parent}/ are: "
                          f"{known}")
    recipe = read_params_file(path)
    params = read_params_file(params_path)
    unknown = sorted(set(recipe) - set(SECTIONS))
    if unknown:
        raise ParamsError(f"{path}: unknown section {unknown[0]!r}; a recipe holds only "
                          f"{' and '.join(SECTIONS)}")
    for section in SECTIONS:
        values = recipe.get(section)
        if not isinstance(values, dict):
            raise ParamsError(f"{path}: expected a mapping under {section!r}, found {values!r}")
        expected = recipe_keys(section)
        missing = [key for key in expected if key not in values]
        extra = [key for key in values if key not in expected]
        if missing:
            raise ParamsError(f"{path}: {section}.{missing[0]}: missing key; a recipe sets "
                              f"every one of {', '.join(expected)}")
        if extra:
            raise ParamsError(f"{path}: {section}.{extra[0]}: not a recipe key; a recipe sets "
                              f"only {', '.join(expected)}")
        try:
            parse_section(section, {**params.get(section, {}), **values})
        except ParamsError as error:
            raise ParamsError(f"{path}: {error}") from None
    return {section: recipe[section] for section in SECTIONS}


def load_recipe(name: str, params_path: str | os.PathLike = "params.yaml",
                **train_overrides) -> tuple:
    """The (ModelParams, TrainParams) a recipe runs with: its values over params.yaml's.

    For benchmarks and notebooks, which train a named recipe without going through DVC.
    `train_overrides` replace train keys afterwards (for example iterations or log_every).
    """
    recipe = read_recipe(recipe_path(name, Path(params_path).parent), params_path)
    params = read_params_file(params_path)
    model = parse_section("model", {**params["model"], **recipe["model"]})
    train = parse_section("train", {**params["train"], **recipe["train"], **train_overrides})
    return model, train


def _override_value(value: Any) -> str:
    # DVC parses each -S value with Hydra's override grammar: lists in brackets, lowercase
    # booleans, and strings quoted whenever they hold anything but plain word characters.
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ",".join(_override_value(item) for item in value) + "]"
    if isinstance(value, str) and not value.replace("_", "").replace("-", "").isalnum():
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(value)


def exp_run_command(recipe: dict[str, dict], extra: Sequence[str] = ()) -> list[str]:
    """The `dvc exp run` command line that sets every key of `recipe`."""
    command = ["dvc", "exp", "run"]
    for section, values in recipe.items():
        for key, value in values.items():
            command += ["-S", f"{section}.{key}={_override_value(value)}"]
    return command + list(extra)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Runs a named recipe as a DVC experiment.",
        epilog="Options after the recipe name that this command does not know (e.g. --queue, "
               "-n NAME, --temp) are passed on to `dvc exp run`.")
    parser.add_argument("recipe", help="a name under recipes/ (chollet, compact) or a path")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the dvc command instead of running it")
    args, extra = parser.parse_known_args(argv)
    recipe = read_recipe(recipe_path(args.recipe), args.params)
    command = exp_run_command(recipe, extra)
    print(shlex.join(command), flush=True)
    if args.dry_run:
        return 0
    return subprocess.run(command).returncode


if __name__ == "__main__":
    from dcgan.cli import run

    sys.exit(run(main))
