"""What this CPU is, from /proc/cpuinfo, read without NumPy or TensorFlow: entry points tune
both before either is imported."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
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
