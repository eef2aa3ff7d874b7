"""Committed files of a git revision, read without checking anything out."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from dcgan.errors import DataError, GitError, one_line


def _git(cwd: str | os.PathLike, *args: str) -> bytes:
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True)
    except FileNotFoundError:
        raise GitError("git not found: install git and put it on PATH") from None
    if result.returncode != 0:
        message = one_line(result.stderr.decode(errors="replace"))
        raise GitError(f"git {' '.join(args)} failed in {cwd}: {message}")
    return result.stdout


def repository_root(folder: str | os.PathLike = ".") -> Path:
    """The top folder of the git work tree that holds `folder`.

    Raises:
        GitError: `folder` is not inside a git work tree, or git is missing.
    """
    try:
        return Path(_git(folder, "rev-parse", "--show-toplevel").decode().strip())
    except GitError:
        raise GitError(f"{Path(folder).resolve()}: not inside a git repository; run the "
                       "review from a clone of the project") from None


class Revision:
    """One commit's files as committed: reading them never touches the work tree.

    Attributes:
        ref: The ref as the user gave it, e.g. `origin/main` or `HEAD~1`.
        sha: The full hash of the commit it names.
        short: An abbreviated hash, for people.
        subject: The first line of the commit message.
    """

    def __init__(self, root: str | os.PathLike, ref: str):
        self.root = Path(root)
        self.ref = ref
        try:
            self.sha = _git(self.root, "rev-parse", "--verify", "--quiet",
                            f"{ref}^{{commit}}").decode().strip()
        except GitError:
            raise GitError(
                f"{ref!r}: names no commit in {self.root}; give a branch, tag or commit (in "
                "CI, check out with fetch-depth: 0 so that origin/<base branch> exists)"
            ) from None
        self.short = _git(self.root, "rev-parse", "--short", self.sha).decode().strip()
        self.subject = _git(self.root, "log", "-1", "--format=%s", self.sha).decode().strip()
        listing = _git(self.root, "ls-tree", "-r", "-z", "--full-tree", "--name-only", self.sha)
        self._files = {name for name in listing.decode().split("\0") if name}
        self._yaml = {}

    def __repr__(self) -> str:
        return f"Revision({self.ref!r} at {self.short})"

    def exists(self, path: str) -> bool:
        """Whether `path`, relative to the repository's root, is a file in this commit."""
        return path in self._files

    def read(self, path: str) -> bytes | None:
        """The committed bytes of `path` (git's blob, no filters applied), or None if absent."""
        if path not in self._files:
            return None
        return _git(self.root, "cat-file", "blob", f"{self.sha}:{path}")

    def read_yaml(self, path: str):
        """The committed YAML file at `path`, parsed as YAML 1.2 as DVC does; None if absent.

        Raises:
            DataError: the file is not valid YAML.
        """
        from ruamel.yaml import YAML, YAMLError

        # Parsed once: the pure-Python YAML 1.2 parser is slow, and the stale check asks for
        # params.yaml once per stage.
        if path not in self._yaml:
            data = self.read(path)
            try:
                self._yaml[path] = None if data is None else YAML(typ="safe",
                                                                  pure=True).load(data)
            except YAMLError as error:
                raise DataError(f"{path} at {self.ref} ({self.short}): not valid YAML "
                                f"({one_line(error)})") from None
        return self._yaml[path]

    def is_checked_out(self) -> bool:
        """Whether this commit is the work tree's HEAD."""
        return _git(self.root, "rev-parse", "HEAD").decode().strip() == self.sha

    def differs_in_work_tree(self, paths: tuple[str, ...]) -> list[str]:
        """The files under `paths` whose work-tree state differs from this commit's.

        Edited, deleted and untracked (but not ignored) files count; paths are relative to the
        repository's root.
        """
        changed = _git(self.root, "diff", "--name-only", "-z", self.sha, "--", *paths)
        untracked = _git(self.root, "ls-files", "--others", "--exclude-standard", "-z", "--",
                         *paths)
        return sorted({name for name in (changed + untracked).decode().split("\0") if name})
