"""Builds small archives in the exact layout of the official binary CIFAR-10 download."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

# Spelled out rather than imported from dcgan, so the fixture does not share a mistake with the
# code under test.
CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")
ARCHIVE_DIR = "cifar-10-batches-bin"
TRAIN_BATCHES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_BATCH = "test_batch.bin"
META = "batches.meta.txt"


def random_batch(rng: np.random.Generator, num_records: int,
                 smooth: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Returns (labels, images (N, 32, 32, 3) uint8) with every class present when N >= 10.

    With `smooth`, images are blocky colour fields with a little noise, which gzip compresses
    and decompresses at about the rate of real photos (use it for timings: uniform noise, the
    default, is stored uncompressed and decompresses ten times faster).
    """
    labels = rng.permutation(np.resize(np.arange(len(CLASSES), dtype=np.uint8), num_records))
    if smooth:
        coarse = rng.integers(0, 256, (num_records, 8, 8, 3)).astype(np.int16)
        fine = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)
        noise = rng.integers(-3, 4, fine.shape, dtype=np.int16)
        images = np.clip(fine + noise, 0, 255).astype(np.uint8)
    else:
        images = rng.integers(0, 256, (num_records, 32, 32, 3), dtype=np.uint8)
    return labels, images


def encode_batch(labels: np.ndarray, images: np.ndarray) -> bytes:
    """Encodes records as CIFAR-10 does: a label byte, then the R, G and B 32x32 planes."""
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return np.concatenate([labels.reshape(-1, 1).astype(np.uint8), planes], axis=1).tobytes()


def _add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 1243476345  # Fixed, so the same arguments give the same md5.
    tar.addfile(info, io.BytesIO(data))


def build_cifar_archive(
    path: str | os.PathLike,
    records_per_batch: int = 30,
    seed: int = 0,
    *,
    test_records: int | None = None,
    extra_members: Mapping[str, bytes] | None = None,
    omit: Iterable[str] = (),
    replace: Mapping[str, bytes] | None = None,
    symlinks: Mapping[str, str] | None = None,
    hardlinks: Mapping[str, str] | None = None,
    smooth: bool = False,
    compresslevel: int = 9,
) -> dict:
    """Writes a .tar.gz laid out exactly like cifar-10-binary.tar.gz, with random content.

    Args:
        path: The archive to write; its folder is created.
        records_per_batch: Records in each of the five training batches.
        seed: Seeds the labels and pixels.
        test_records: Records in test_batch.bin; defaults to `records_per_batch`.
        extra_members: More files to add after the official ones, by member name as written
            (for example "../evil" or "cifar-10-batches-bin/data_batch_6.bin").
        omit: Official members to leave out, by base name ("data_batch_3.bin",
            "batches.meta.txt", or "cifar-10-batches-bin" for the directory entry).
        replace: Raw content for official members, by base name, instead of the encoded batch
            (for example a truncated batch). Expected arrays still describe the real batches.
        symlinks: Symbolic links to add last, from member name to target (which need not be
            in the archive).
        hardlinks: Hard links to add last, from member name to the member they link to.
        smooth: Use compressible, photo-like images instead of uniform noise.
        compresslevel: gzip level; lower builds large archives faster.

    Returns:
        A dict with `path`, `md5` (of the archive), `train` and `test` (each a dict from class
        name to its uint8 (N, 32, 32, 3) images in archive order) and `labels` (a dict from
        batch base name to its label array).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    omit = set(omit)
    replace = dict(replace or {})
    test_records = records_per_batch if test_records is None else test_records

    batches = {name: random_batch(rng, records_per_batch, smooth) for name in TRAIN_BATCHES}
    batches[TEST_BATCH] = random_batch(rng, test_records, smooth)

    with tarfile.open(path, mode="w:gz", compresslevel=compresslevel,
                      format=tarfile.GNU_FORMAT) as tar:
        if ARCHIVE_DIR not in omit:
            info = tarfile.TarInfo(ARCHIVE_DIR)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.mtime = 1243476345
            tar.addfile(info)
        if META not in omit:
            _add_file(tar, f"{ARCHIVE_DIR}/{META}",
                      replace.get(META, ("\n".join(CLASSES) + "\n").encode()))
        for name in (*TRAIN_BATCHES, TEST_BATCH):
            if name not in omit:
                data = replace[name] if name in replace else encode_batch(*batches[name])
                _add_file(tar, f"{ARCHIVE_DIR}/{name}", data)
        for name, data in (extra_members or {}).items():
            _add_file(tar, name, data)
        for kind, links in ((tarfile.SYMTYPE, symlinks), (tarfile.LNKTYPE, hardlinks)):
            for name, target in (links or {}).items():
                info = tarfile.TarInfo(name)
                info.type, info.linkname = kind, target
                info.mode, info.mtime = 0o777, 1243476345
                tar.addfile(info)

    def per_class(names: Iterable[str]) -> dict[str, np.ndarray]:
        labels = np.concatenate([batches[name][0] for name in names])
        images = np.concatenate([batches[name][1] for name in names])
        return {cls: images[labels == index] for index, cls in enumerate(CLASSES)}

    return {
        "path": path,
        "md5": hashlib.md5(path.read_bytes()).hexdigest(),
        "train": per_class(TRAIN_BATCHES),
        "test": per_class([TEST_BATCH]),
        "labels": {name: labels for name, (labels, _) in batches.items()},
    }
