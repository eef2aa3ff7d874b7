"""Whether a commit's committed outputs still match its params and code, by its dvc.lock."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterator, Mapping

# dvc.lock records, for every stage that ran, the command, the params values and the md5 of each
# dependency and output. `dvc status` compares that record with the work tree; this compares it
# with what one commit holds, so it needs no checkout, no cache and no run. What git does not
# hold (data and models, tracked by DVC) cannot be checked this way and is skipped: a stale stage
# still shows through its params, its code, dvc.yaml or the outputs it commits (reports/).

PARAMS_FILE = "params.yaml"
MISSING = object()


@dataclass(frozen=True)
class Staleness:
    """What a commit's dvc.lock says about its outputs.

    Attributes:
        reasons: Why the committed outputs are not those of the committed params and code, one
            sentence each; empty when everything that can be checked agrees.
        unchecked: Why nothing could be checked (no dvc.lock), or None.
    """

    reasons: list[str] = field(default_factory=list)
    unchecked: str | None = None

    @property
    def stale(self) -> bool:
        return bool(self.reasons)


def flatten(mapping: Mapping, prefix: str = "") -> dict:
    """Nested mappings to one level with dotted keys: {"train": {"seed": 0}} -> {"train.seed": 0}.

    An empty mapping stays a value, so that a section emptied out still shows.
    """
    flat = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def format_value(value) -> str:
    """A params value as YAML writes it: null, true, 0.0002, a string unquoted."""
    if value is MISSING:
        return "(absent)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _lookup(params, key: str):
    # DVC records a declared key as written: a section ("train") or a dotted leaf
    # ("train.seed"); either is looked up in the nested params.
    if isinstance(params, Mapping) and key in params:
        return params[key]
    value = params
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


def _md5_matches(data: bytes, recorded: str) -> bool:
    # DVC 3 (`hash: md5`) hashes the bytes as they are; DVC 2 hashed text files with CRLF
    # turned into LF, so either digest means the file is the one that was recorded.
    digests = {hashlib.md5(data).hexdigest()}
    if b"\0" not in data[:8000]:
        digests.add(hashlib.md5(data.replace(b"\r\n", b"\n")).hexdigest())
    return recorded in digests


def _declared(stage: Mapping) -> Iterator[tuple[str, str, bool]]:
    """(kind, path, committed) for every dependency and output that dvc.yaml declares."""
    for path in stage.get("deps") or []:
        yield "dep", str(path), False
    for kind in ("outs", "metrics", "plots"):
        for entry in stage.get(kind) or []:
            if isinstance(entry, Mapping):
                for path, options in entry.items():
                    cached = not isinstance(options, Mapping) or options.get("cache", True)
                    yield "out", str(path), not cached
            else:
                yield "out", str(entry), False


def _declared_params(stage: Mapping) -> Iterator[tuple[str, str]]:
    """(params file, key) for every param that dvc.yaml declares for a stage."""
    for entry in stage.get("params") or []:
        if isinstance(entry, Mapping):
            for path, keys in entry.items():
                for key in keys or []:
                    yield str(path), str(key)
        else:
            yield PARAMS_FILE, str(entry)


def _against_dvc_yaml(name: str, declared: Mapping, ran: Mapping | None) -> list[str]:
    # What dvc.yaml now asks of a stage that dvc.lock does not record it running with.
    if ran is None:
        return [f"stage `{name}` has never run: dvc.yaml has it, dvc.lock does not"]
    reasons = []
    command = declared.get("cmd")
    if isinstance(command, str) and "${" not in command and command != ran.get("cmd"):
        reasons.append(f"stage `{name}`: its command in dvc.yaml is not the one it ran")
    recorded = {str(item.get("path")) for kind in ("deps", "outs")
                for item in ran.get(kind) or []}
    for _, path, _ in _declared(declared):
        if path not in recorded:
            reasons.append(f"stage `{name}`: dvc.yaml lists `{path}`, which it did not run with")
    ran_params = ran.get("params") or {}
    for path, key in _declared_params(declared):
        if _lookup(ran_params.get(path) or {}, key) is MISSING:
            reasons.append(f"stage `{name}`: depends on param `{key}`, which it did not run "
                           "with")
    return reasons


def _params_reasons(revision, name: str, ran: Mapping) -> list[str]:
    reasons = []
    for path, recorded in (ran.get("params") or {}).items():
        params = revision.read_yaml(path)
        if params is None:
            reasons.append(f"stage `{name}` ran with params from `{path}`, which is not "
                           "committed")
            continue
        for key, value in recorded.items():
            current = _lookup(params, key)
            old = flatten({key: value})
            new = {key: MISSING} if current is MISSING else flatten({key: current})
            for leaf in sorted(set(old) | set(new)):
                # Compared with ==, as DVC does: 1 and 1.0 are the same value.
                before, after = old.get(leaf, MISSING), new.get(leaf, MISSING)
                if before != after:
                    reasons.append(f"stage `{name}`: param `{leaf}` is {format_value(after)} "
                                   f"in {path}, but the stage ran with {format_value(before)}")
    return reasons


def _files_reasons(revision, name: str, ran: Mapping, committed_outs: set[str]) -> list[str]:
    reasons = []
    for kind in ("deps", "outs"):
        for item in ran.get(kind) or []:
            path, recorded = str(item.get("path")), str(item.get("md5", ""))
            if not recorded or recorded.endswith(".dir"):
                continue  # A folder's digest covers files git does not hold.
            data = revision.read(path)
            if data is None:
                if kind == "outs" and path in committed_outs:
                    reasons.append(f"stage `{name}`: its output `{path}` is not committed")
                continue
            if not _md5_matches(data, recorded):
                if kind == "deps":
                    reasons.append(f"stage `{name}`: `{path}` changed since the stage ran")
                else:
                    reasons.append(f"stage `{name}`: `{path}` is not the file the stage "
                                   "wrote (its md5 differs from dvc.lock's)")
    return reasons


def check(revision) -> Staleness:
    """Compares a commit's dvc.yaml, params and committed files with its dvc.lock.

    Args:
        revision: The commit, read through `read(path) -> bytes | None` and
            `read_yaml(path)` (dcgan.revisions.Revision).

    Returns:
        The reasons the commit's committed outputs are stale, in pipeline order; or why
        nothing could be checked.

    Raises:
        DataError: dvc.yaml, dvc.lock or a params file is not valid YAML.
    """
    lock = revision.read_yaml("dvc.lock")
    if lock is None:
        return Staleness(unchecked="no dvc.lock is committed, so nothing records which params "
                                   "and code the committed outputs came from")
    ran_stages = (lock if isinstance(lock, Mapping) else {}).get("stages") or {}
    pipeline = revision.read_yaml("dvc.yaml")
    declared_stages = (pipeline if isinstance(pipeline, Mapping) else {}).get("stages") or {}
    committed_outs = {path for stage in declared_stages.values() if isinstance(stage, Mapping)
                      for _, path, committed in _declared(stage) if committed}
    # Stages in dvc.yaml's order; a foreach or matrix stage runs as `name@item` entries.
    # Without a dvc.yaml every recorded stage is checked.
    names = list(declared_stages)
    names += [name for name in ran_stages if name not in declared_stages
              and (not declared_stages or name.split("@")[0] in declared_stages)]
    reasons = []
    for name in names:
        declared, ran = declared_stages.get(name), ran_stages.get(name)
        if isinstance(declared, Mapping) and not {"foreach", "matrix"} & set(declared):
            reasons += _against_dvc_yaml(name, declared, ran)
        if isinstance(ran, Mapping):
            reasons += _params_reasons(revision, name, ran)
            reasons += _files_reasons(revision, name, ran, committed_outs)
    return Staleness(reasons=reasons)
