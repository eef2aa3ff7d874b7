"""Atomic writers and checked readers for the artifacts that stages exchange."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np

from dcgan.errors import DataError, one_line
from dcgan.pixels import IMAGE_SHAPE


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yields a temporary path beside `path` and renames it into place only on success.

    An interrupted or failing writer leaves nothing under `path`, so a file that exists is
    always complete. Works for files and for directories.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / f"out{suffix}"
    try:
        yield target
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Writes arrays to an .npz file atomically (numpy would otherwise append '.npz')."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes(path, buffer.getvalue())


def check_images(images: np.ndarray, where: str) -> np.ndarray:
    """Checks the image contract: uint8 RGB of shape (N, *IMAGE_SHAPE)."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise DataError(
            f"{where}: expected uint8 images of shape (N, {', '.join(map(str, IMAGE_SHAPE))}), "
            f"found {images.dtype} {tuple(images.shape)}"
        )
    return images


def load_images(path: str | os.PathLike, min_count: int = 1) -> np.ndarray:
    """Loads the `images` array of an .npz artifact and checks its layout.

    Raises:
        DataError: the file is missing, unreadable, lacks `images`, has the wrong shape or
            dtype, or holds fewer than `min_count` images.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; run the stage that writes it first")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "images" not in npz:
                raise DataError(f"{path}: no 'images' array (found: {', '.join(npz.files)})")
            images = npz["images"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a readable .npz file ({one_line(error)})") from None
    check_images(images, str(path))
    if len(images) < min_count:
        raise DataError(f"{path}: holds {len(images)} images, at least {min_count} needed")
    return images


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes (any hashlib algorithm), read in 1 MiB chunks."""
    import hashlib

    digest = hashlib.new(algorithm)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
