import ast
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dcgan.cpu import (
    CpuInfo,
    numpy_avx512_name,
    read_cpuinfo,
    slow_avx512_sort,
    sort_without_avx512,
)

ROOT = Path(__file__).resolve().parents[1]
ZEN4_TEXT = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
             "flags\t\t: avx2 avx512f avx512_bf16\n\nprocessor\t: 1\nvendor_id\t: Other\n")
ZEN4 = CpuInfo("AuthenticAMD", 25, frozenset({"avx2", "avx512f", "avx512_bf16"}))
ZEN3 = CpuInfo("AuthenticAMD", 25, frozenset({"avx2"}))
ZEN5 = CpuInfo("AuthenticAMD", 26, ZEN4.flags)
XEON = CpuInfo("GenuineIntel", 6, frozenset({"avx2", "avx512f"}))
# NumPy names its x86 kernels only on x86; elsewhere the names are not its to disable.
x86_only = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                              reason="NumPy's AVX-512 kernels are x86's")


def test_read_cpuinfo_keeps_the_first_processors_vendor_family_and_flags(tmp_path):
    (tmp_path / "cpuinfo").write_text(ZEN4_TEXT)
    assert read_cpuinfo(tmp_path / "cpuinfo") == ZEN4
    assert read_cpuinfo(tmp_path / "missing") == CpuInfo()  # no /proc/cpuinfo: macOS, Windows


@pytest.mark.parametrize("cpu, slow", [(ZEN4, True), (ZEN3, False), (ZEN5, False), (XEON, False),
                                       (CpuInfo(), False)])
def test_only_the_zen_4_sorts_slower_in_avx512(cpu, slow):
    assert slow_avx512_sort(cpu) is slow


@pytest.mark.parametrize("version, name", [
    ("2.4.6", "X86_V4"), ("2.10.0", "X86_V4"), ("3.0.0rc1", "X86_V4"),
    ("2.3.5", "AVX512F"), ("2.0.0", "AVX512F"),
    ("1.26.4", None),   # no AVX2 sort to fall back on
    ("unknown", None),
])
def test_numpy_avx512_name_follows_numpys_names(version, name):
    assert numpy_avx512_name(version) == name


@x86_only
def test_the_name_is_one_the_installed_numpy_dispatches():
    from numpy._core._multiarray_umath import __cpu_dispatch__

    assert numpy_avx512_name(np.__version__) in __cpu_dispatch__


def test_sort_without_avx512_sets_numpys_switch_on_a_zen_4_only():
    environ = {}
    assert sort_without_avx512(environ, ZEN4, "2.4.6") == "X86_V4"
    assert environ == {"NPY_DISABLE_CPU_FEATURES": "X86_V4"}
    for cpu, version in ((ZEN5, "2.4.6"), (XEON, "2.4.6"), (ZEN4, "1.26.4")):
        environ = {}
        assert sort_without_avx512(environ, cpu, version) is None and environ == {}


def test_sort_without_avx512_leaves_a_users_switch_alone():
    environ = {"NPY_DISABLE_CPU_FEATURES": ""}
    assert sort_without_avx512(environ, ZEN4, "2.4.6") is None
    assert environ == {"NPY_DISABLE_CPU_FEATURES": ""}


def test_sort_without_avx512_warns_and_sets_nothing_once_numpy_is_imported(monkeypatch):
    # NumPy is imported in this process, so the switch would not act: it is not set.
    monkeypatch.delenv("NPY_DISABLE_CPU_FEATURES", raising=False)
    with pytest.warns(RuntimeWarning, match="after NumPy is imported"):
        assert sort_without_avx512(cpu=ZEN4, numpy_version="2.4.6") is None
    assert "NPY_DISABLE_CPU_FEATURES" not in os.environ


@x86_only
def test_numpy_takes_the_switch_without_a_warning():
    # The name set for the installed NumPy, in a fresh process where warnings are errors.
    code = ("from dcgan.cpu import CpuInfo, sort_without_avx512\n"
            "cpu = CpuInfo('AuthenticAMD', 25, frozenset({'avx512f'}))\n"
            "assert sort_without_avx512(cpu=cpu) is not None\n"
            "import numpy\n")
    subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=ROOT, check=True,
                   env={"PATH": "", "PYTHONPATH": str(ROOT)})


def test_the_evaluate_stage_imports_numpy_only_after_its_entry_point_starts():
    # stages/evaluate.py sets NumPy's switch in its __main__ block, which runs after the
    # module's own imports: an import of NumPy among them would come first and void it.
    code = ("import sys, stages.evaluate\n"
            "print(sorted({name.split('.')[0] for name in sys.modules} & {'numpy', 'tensorflow'}))")
    found = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                           capture_output=True, text=True)
    assert found.stdout.strip() == "[]"


def _first_import_before_the_switch(source: str) -> str | None:
    """The first module `source` imports at its top level, before any call of
    sort_without_avx512(), that is neither the standard library nor dcgan.cpu: one that may
    import NumPy before its switch is set. None where the call comes first."""
    for statement in ast.parse(source).body:
        if (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)
                and getattr(statement.value.func, "id", None) == "sort_without_avx512"):
            return None
        names = ([alias.name for alias in statement.names] if isinstance(statement, ast.Import)
                 else [statement.module] if isinstance(statement, ast.ImportFrom) else [])
        for name in names:
            if name != "dcgan.cpu" and name.split(".")[0] not in (
                    *sys.stdlib_module_names, "__future__"):
                return name
    return None


def test_every_bench_script_that_scores_sets_numpys_switch_before_importing_it():
    # The SWD scores sort; a bench script that scores must sort as fast as the stage does.
    sources = {path.name: path.read_text() for path in sorted((ROOT / "bench").glob("*.py"))}
    scorers = {name: source for name, source in sources.items()
               if "dcgan.evaluation" in source or "dcgan import metrics" in source}
    assert len(scorers) >= 8
    late = {name: _first_import_before_the_switch(source) for name, source in scorers.items()}
    assert {name: module for name, module in late.items() if module} == {}
