"""dvc.yaml cannot go stale: every project file a stage runs, and only the params it reads."""

import ast
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("dcgan", "stages")
PARAMS_READERS = ("load_sections",)


def dvc_stages() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def module_file(name: str) -> Path | None:
    """The project file of a dotted module name, or None outside the project."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = REPO.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement in `path` may load, at any depth of the code.

    Importing a.b.c runs a/__init__.py and a/b/__init__.py too, so parents count; and
    `from a import b` loads the module a.b when there is one.
    """
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    with_parents = set()
    for name in names:
        parts = name.split(".")
        with_parents.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return with_parents


def closure(script: Path) -> set[Path]:
    """The project files that running `script` as a module (python -m) can execute."""
    package_init = script.parent / "__init__.py"
    seen, todo = set(), [script] + ([package_init] if package_init.is_file() else [])
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_modules(path):
            found = module_file(name)
            if found is not None:
                todo.append(found)
    return seen


def stage_script(command: str) -> Path:
    match = re.search(r"python -m (stages\.\w+)", command)
    assert match, f"stage command does not run a stage module: {command}"
    return module_file(match.group(1))


def covered(path: Path, deps: list[str]) -> bool:
    relative = path.relative_to(REPO)
    return any(relative == Path(dep) or Path(dep) in relative.parents for dep in deps)


def params_read(script: Path) -> set[str]:
    """The sections a stage script asks load_sections for, as written in its calls."""
    sections = set()
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in PARAMS_READERS:
            literals = [arg.value for arg in node.args[1:] if isinstance(arg, ast.Constant)]
            assert len(literals) == len(node.args) - 1, "sections must be written out literally"
            sections.update(literals)
    return sections


@pytest.mark.parametrize("name", sorted(dvc_stages()))
def test_every_project_file_a_stage_runs_is_among_its_deps(name):
    stage = dvc_stages()[name]
    files = closure(stage_script(stage["cmd"]))
    missing = sorted(str(p.relative_to(REPO)) for p in files if not covered(p, stage["deps"]))
    assert not missing, f"stage {name} runs these files without depending on them: {missing}"


@pytest.mark.parametrize("name", sorted(dvc_stages()))
def test_every_stage_declares_exactly_the_params_sections_it_reads(name):
    stage = dvc_stages()[name]
    script = stage_script(stage["cmd"])
    assert params_read(script) == set(stage.get("params", []))
    # Only the stage script reads the params file; the package receives dataclasses.
    for path in closure(script) - {script, REPO / "dcgan" / "params.py"}:
        assert not params_read(path), f"{path} reads params itself"


def test_the_walk_follows_imports_inside_functions_and_from_imports(tmp_path):
    # stages/sample.py imports the package only inside main(); the walk must see it.
    files = {p.relative_to(REPO).as_posix() for p in closure(REPO / "stages" / "sample.py")}
    assert {"stages/__init__.py", "dcgan/__init__.py", "dcgan/sampling.py",
            "dcgan/models.py", "dcgan/pixels.py"} <= files
