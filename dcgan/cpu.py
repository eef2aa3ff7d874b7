"""What this CPU is, from /proc/cpuinfo, read without NumPy or TensorFlow: entry points tune
both before either is imported."""

from __future__ import annotations

import os
import re
import sys
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


@dataclass(frozen=True)
class CpuInfo:
    """The first processor's entry in /proc/cpuinfo; empty where it cannot be read."""

    vendor: str = ""            # vendor_id: GenuineIntel, AuthenticAMD
    family: int | None = None   # cpu family, as a number
    flags: frozenset[str] = frozenset()


def read_cpuinfo(path: str | os.PathLike = "/proc/cpuinfo") -> CpuInfo:
    """The first processor's vendor, family and flags; CpuInfo() where `path` cannot be read
    (macOS, Windows)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return CpuInfo()

    def field(name: str) -> str:
        line = re.search(rf"^{name}\s*:(.*)$", text, re.MULTILINE)
        return line.group(1).strip() if line else ""

    family = field("cpu family")
    return CpuInfo(vendor=field("vendor_id"), family=int(family) if family.isdigit() else None,
                   flags=frozenset(field("flags").split()))


# AMD's family 25: Zen 3, without AVX-512, and Zen 4, with it. Zen 5 is family 26.
ZEN4_FAMILY = 25


def slow_avx512_sort(cpu: CpuInfo) -> bool:
    """Whether NumPy's AVX-512 sort is slower than its AVX2 one on `cpu`: on a Zen 4.

    NumPy's x86-simd-sort stores each partitioned vector with VPCOMPRESS to memory, which the
    Zen 4 runs in microcode (numpy/x86-simd-sort issue 6). On a 2-core Zen 4 EPYC with NumPy
    2.4, sorting 64 rows of 338000 float32 took 0.60 s in AVX-512 and 0.13 s in AVX2, and the
    evaluate stage's metrics on the frogs 84 s against 43 s, to the same bit
    (docs/recipe-search.md, round 48).
    """
    return cpu.vendor == "AuthenticAMD" and cpu.family == ZEN4_FAMILY and "avx512f" in cpu.flags


def numpy_avx512_name(numpy_version: str) -> str | None:
    """The name NPY_DISABLE_CPU_FEATURES takes for NumPy's AVX-512 kernels, the sort's among
    them: X86_V4 from NumPy 2.4, AVX512F from 2.0; None before 2.0, which has no AVX2 sort to
    fall back on (with AVX-512 off, 1.26 sorts in scalar code, twice as slow). A name NumPy
    does not dispatch is an ImportWarning."""
    found = re.match(r"(\d+)\.(\d+)", numpy_version)
    if not found:
        return None
    version = tuple(int(part) for part in found.groups())
    if version >= (2, 4):
        return "X86_V4"
    return "AVX512F" if version >= (2, 0) else None


def sort_without_avx512(environ: dict | None = None, cpu: CpuInfo | None = None,
                        numpy_version: str | None = None) -> str | None:
    """Has NumPy sort in AVX2 where its AVX-512 sort is the slower (slow_avx512_sort), through
    NPY_DISABLE_CPU_FEATURES, unless `environ` already sets it. NumPy reads it once, when it is
    first imported, so this must run before that. Sorts give the same result either way; the
    switch turns NumPy's other AVX-512 kernels off too, and the evaluate stage still took half
    the time.

    Returns the value set, or None where nothing was set. Called on the process's own
    environment after NumPy is imported, it sets nothing and warns: the switch would not act.
    """
    if environ is None:
        if "numpy" in sys.modules:
            warnings.warn("sort_without_avx512() runs after NumPy is imported, where NumPy "
                          "no longer reads its switch; call it first", RuntimeWarning,
                          stacklevel=2)
            return None
        environ = os.environ
    if "NPY_DISABLE_CPU_FEATURES" in environ:
        return None
    if not slow_avx512_sort(read_cpuinfo() if cpu is None else cpu):
        return None
    if numpy_version is None:
        try:
            numpy_version = metadata.version("numpy")
        except metadata.PackageNotFoundError:
            return None
    name = numpy_avx512_name(numpy_version)
    if name is not None:
        environ["NPY_DISABLE_CPU_FEATURES"] = name
    return name
