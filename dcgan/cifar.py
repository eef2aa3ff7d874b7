"""Downloads the CIFAR-10 binary archive and reads one class straight out of it."""

from __future__ import annotations

import logging
import os
import tarfile
import urllib.error
import urllib.parse
import zlib
from pathlib import Path

import numpy as np

from dcgan.artifacts import file_digest
from dcgan.errors import DataError, one_line
from dcgan.params import CIFAR10_CLASSES
from dcgan.pixels import CHANNELS, IMAGE_SIZE

logger = logging.getLogger(__name__)

ARCHIVE_DIR = "cifar-10-batches-bin"
TRAIN_BATCHES = tuple(f"{ARCHIVE_DIR}/data_batch_{i}.bin" for i in range(1, 6))
TEST_BATCH = f"{ARCHIVE_DIR}/test_batch.bin"
# Files the official archive carries besides the batches; they are skipped, anything else is
# refused because an archive with unknown content is not the one the md5 was meant for.
OTHER_FILES = (f"{ARCHIVE_DIR}/batches.meta.txt", f"{ARCHIVE_DIR}/readme.html")
# A record is one label byte, then the red, green and blue planes of a 32x32 image.
RECORD_BYTES = 1 + IMAGE_SIZE * IMAGE_SIZE * CHANNELS


def _cache_base(cache_dir: str | os.PathLike | None) -> str:
    # Keras reads KERAS_HOME once, when it is imported; reading it here, at call time, lets a
    # caller (or a test) point the cache elsewhere after Keras is loaded.
    if cache_dir is None:
        cache_dir = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    base = os.path.expanduser(os.fspath(cache_dir))
    try:
        os.makedirs(base, exist_ok=True)
    except OSError:
        pass  # get_file then falls back to /tmp/.keras, which _cached_path mirrors.
    return base


def _cached_path(base: str, fname: str) -> Path:
    # The place keras.utils.get_file stores `fname`, including its fallback for a cache
    # directory that cannot be written.
    if not os.access(base, os.W_OK):
        base = os.path.join("/tmp", ".keras")
    return Path(base, "datasets", fname)


def download_archive(url: str, md5: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Downloads `url` into the Keras cache unless a copy with the right md5 is already there.

    Args:
        url: Where the archive lives (http, https, ftp or file URL). The cached file takes
            the last part of its path as its name.
        md5: The archive's expected md5, 32 hex digits.
        cache_dir: The cache root; `None` means $KERAS_HOME, else ~/.keras. Files go to its
            `datasets` folder.

    Returns:
        The path of the checked archive in the cache.

    Raises:
        DataError: the URL names no file, cannot be fetched, or the file fetched does not
            match `md5` (the bad file is then removed from the cache).
    """
    fname = os.path.basename(urllib.parse.urlsplit(url).path)
    if not fname:
        raise DataError(f"prepare.url: expected a URL that ends in a file name, found {url!r}")
    md5 = md5.lower()
    base = _cache_base(cache_dir)
    target = _cached_path(base, fname)
    # get_file would accept this file too, but only after importing Keras, and with it
    # TensorFlow, which takes longer than reading the whole archive.
    if target.is_file() and file_digest(target, "md5") == md5:
        logger.info("%s: cached archive passes the md5 check, not downloading it again", target)
        return target

    import keras  # Deferred: importing Keras loads TensorFlow, which reading does not need.

    try:
        path = keras.utils.get_file(fname, origin=url, file_hash=md5, hash_algorithm="md5",
                                    cache_subdir="datasets", cache_dir=base)
    except ValueError as error:
        # get_file raises ValueError when the download does not match the hash, and leaves
        # the file in the cache; remove it so that nothing can take it for the real one.
        found = file_digest(target, "md5") if target.is_file() else None
        if found is None or found == md5:  # Not a checksum failure after all.
            message = f"cannot download {url}: {one_line(error)}; check prepare.url"
            raise DataError(message) from None
        target.unlink()
        raise DataError(
            f"{url}: md5 mismatch, expected {md5} (prepare.md5), found {found}; the download "
            f"was deleted. If this is the right archive set prepare.md5 to {found}, "
            f"otherwise fix prepare.url") from None
    except Exception as error:  # get_file wraps every fetch failure in a bare Exception.
        raise DataError(f"cannot download {url}: {_fetch_failure(error)}; check prepare.url "
                        f"and the network") from None
    return Path(path)


def _fetch_failure(error: Exception) -> str:
    # get_file replaces urllib's error by its own message; the original says it better.
    cause = error.__context__
    if isinstance(cause, urllib.error.HTTPError):
        return f"HTTP error {cause.code} {cause.reason}"
    if isinstance(cause, urllib.error.URLError):
        return one_line(cause.reason)
    return one_line(error)


def _class_records(data: bytes, label: int, archive_path: Path, member: str) -> np.ndarray:
    """Returns the (n, 32, 32, 3) images of one label in a batch, in batch order."""
    # The prepare stage reads the archive only once it has passed its md5 check, so wrong
    # content means a damaged copy at prepare.url or a prepare.md5 that was set to match it.
    if len(data) % RECORD_BYTES:
        raise DataError(f"{archive_path}: {member}: {len(data)} bytes is not a whole number of "
                        f"{RECORD_BYTES}-byte records, so the archive is damaged; delete it so "
                        f"that it is downloaded again, and check prepare.url and prepare.md5")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, 0]
    if len(labels) and labels.max() >= len(CIFAR10_CLASSES):
        raise DataError(f"{archive_path}: {member}: label {labels.max()} found, CIFAR-10 labels "
                        f"are 0 to 9; the archive is damaged or not CIFAR-10, so check "
                        f"prepare.url and prepare.md5")
    # Each record stores the red, green and blue 32x32 planes one after the other.
    planes = records[labels == label, 1:].reshape(-1, CHANNELS, IMAGE_SIZE, IMAGE_SIZE)
    return planes.transpose(0, 2, 3, 1)


def read_cifar10_class(archive_path: str | os.PathLike,
                       class_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads one class of the official binary CIFAR-10 archive (cifar-10-binary.tar.gz).

    The archive is streamed once, member by member, with nothing extracted to disk.

    Args:
        archive_path: The .tar.gz file.
        class_name: One of CIFAR10_CLASSES.

    Returns:
        (train, test): uint8 RGB arrays of shape (N, 32, 32, 3); train holds the class's
        images of data_batch_1 to data_batch_5 and test those of test_batch, in archive order.

    Raises:
        DataError: the file is not a readable gzip-compressed tar, holds a member other than
            the official ones, lacks a batch, or a batch is damaged.
        ValueError: `class_name` is not a CIFAR-10 class.
    """
    if class_name not in CIFAR10_CLASSES:
        raise ValueError(f"class_name: expected one of {', '.join(CIFAR10_CLASSES)}, "
                         f"found {class_name!r}")
    label = CIFAR10_CLASSES.index(class_name)
    archive_path = Path(archive_path)
    if not archive_path.is_file():
        raise DataError(f"{archive_path}: archive not found")
    batches: dict[str, np.ndarray] = {}
    try:
        with tarfile.open(archive_path, mode="r:gz") as tar:
            # Iterating and reading each member in turn keeps the gzip stream moving forward.
            for member in tar:
                _check_member(member, archive_path, batches)
                if member.name in TRAIN_BATCHES or member.name == TEST_BATCH:
                    data = tar.extractfile(member).read()
                    batches[member.name] = _class_records(data, label, archive_path,
                                                          member.name)
            # Drain the stream to its end so that gzip checks its CRC and length trailer.
            while tar.fileobj.read(1 << 20):
                pass
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise DataError(f"{archive_path}: not a readable .tar.gz archive ({one_line(error)});"
                        f" delete it so that it is downloaded again") from None
    missing = [name for name in (*TRAIN_BATCHES, TEST_BATCH) if name not in batches]
    if missing:
        raise DataError(f"{archive_path}: {', '.join(missing)} missing; expected the binary "
                        f"CIFAR-10 archive (cifar-10-binary.tar.gz)")
    train = np.concatenate([batches[name] for name in TRAIN_BATCHES])
    test = np.ascontiguousarray(batches[TEST_BATCH])
    for split, images in (("training", train), ("test", test)):
        if not len(images):
            raise DataError(f"{archive_path}: no {class_name!r} images in the {split} batches")
    return train, test


def _check_member(member: tarfile.TarInfo, archive_path: Path, seen: dict) -> None:
    name = member.name
    if member.issym() or member.islnk():
        kind = "symbolic" if member.issym() else "hard"
        raise DataError(f"{archive_path}: member {name!r} is a {kind} link to "
                        f"{member.linkname!r}; the binary CIFAR-10 archive holds only regular "
                        f"files, so check prepare.url and prepare.md5")
    if name == ARCHIVE_DIR and member.isdir():
        return
    if member.isfile() and name in (*TRAIN_BATCHES, TEST_BATCH, *OTHER_FILES):
        if name in seen:
            raise DataError(f"{archive_path}: member {name!r} appears twice")
        return
    raise DataError(f"{archive_path}: unexpected member {name!r}; expected only "
                    f"{ARCHIVE_DIR}/ with the five data batches, test_batch.bin, "
                    f"batches.meta.txt and readme.html")
