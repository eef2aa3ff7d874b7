"""Tests of the prepare stage: the CIFAR-10 download and reader, the image-folder reader."""

from __future__ import annotations

import gzip
import importlib.util
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image, ImageFile

import dcgan.images
from cifar_archive import build_cifar_archive, encode_batch
from dcgan.artifacts import load_images
from dcgan.cifar import download_archive, read_cifar10_class
from dcgan.cli import run
from dcgan.errors import DataError
from dcgan.images import load_square, read_image_folder
from png_files import CHANNELS, GREY, GREY_ALPHA, RGB, RGB_ALPHA, write_blank_png, write_png

REPO = Path(__file__).resolve().parents[1]


def load_stage():
    spec = importlib.util.spec_from_file_location("prepare_stage", REPO / "stages" / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


stage = load_stage()


def write_params(tmp_path: Path, **overrides) -> Path:
    prepare = dict(source="cifar10", url="file:///nowhere/cifar-10-binary.tar.gz",
                   md5="0" * 32, class_name="frog", images_dir=None,
                   holdout_fraction=0.1, seed=0)
    prepare.update(overrides)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"prepare": prepare}))
    return path


def run_stage(params: Path, out: Path) -> int:
    return run(stage.main, ["--params", str(params), "--out", str(out)])


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    return lines[0]


# The CIFAR-10 source.

def test_stage_writes_the_class_pixel_for_pixel_in_archive_order(tmp_path, cifar_archive,
                                                                keras_home):
    url, md5, expected = cifar_archive
    out = tmp_path / "prepared"
    assert run_stage(write_params(tmp_path, url=url, md5=md5), out) == 0

    assert sorted(p.name for p in out.iterdir()) == ["test.npz", "train.npz"]
    train, test = load_images(out / "train.npz"), load_images(out / "test.npz")
    assert len(train) == 15 and len(test) == 3  # 150 and 30 records, balanced classes.
    np.testing.assert_array_equal(train, expected["train"]["frog"])
    np.testing.assert_array_equal(test, expected["test"]["frog"])
    assert (keras_home / "datasets" / "cifar-10-binary.tar.gz").is_file()


def test_every_class_is_read_exactly(cifar_archive, keras_home):
    url, md5, expected = cifar_archive
    archive = download_archive(url, md5)
    for name, images in expected["train"].items():
        train, test = read_cifar10_class(archive, name)
        assert train.dtype == np.uint8 and train.shape[1:] == (32, 32, 3)
        np.testing.assert_array_equal(train, images)
        np.testing.assert_array_equal(test, expected["test"][name])


def test_a_cached_archive_that_passes_the_check_is_not_downloaded_again(tmp_path,
                                                                         cifar_archive):
    url, md5, expected = cifar_archive
    first = download_archive(url, md5)
    expected["path"].unlink()  # Any second download would now fail.

    assert download_archive(url, md5) == first
    out = tmp_path / "prepared"
    assert run_stage(write_params(tmp_path, url=url, md5=md5), out) == 0
    np.testing.assert_array_equal(load_images(out / "train.npz"), expected["train"]["frog"])


def test_a_damaged_cached_archive_is_downloaded_again(cifar_archive, keras_home):
    url, md5, expected = cifar_archive
    cached = keras_home / "datasets" / "cifar-10-binary.tar.gz"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"half a download")

    assert download_archive(url, md5) == cached
    assert cached.read_bytes() == expected["path"].read_bytes()


def test_wrong_md5_fails_in_one_line_and_leaves_nothing(tmp_path, cifar_archive, keras_home,
                                                        capsys):
    url, md5, _ = cifar_archive
    wrong = "0123456789abcdef" * 2
    out = tmp_path / "prepared"

    assert run_stage(write_params(tmp_path, url=url, md5=wrong), out) == 1
    line = one_error_line(capsys)
    assert "md5" in line and wrong in line and md5 in line and url in line
    assert "prepare.md5" in line and "prepare.url" in line
    assert not out.exists()
    assert not (keras_home / "datasets" / "cifar-10-binary.tar.gz").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".prepared")] == []


def test_unreachable_url_is_a_data_error(tmp_path, keras_home):
    url = (tmp_path / "missing" / "cifar-10-binary.tar.gz").as_uri()
    with pytest.raises(DataError, match="cannot download .*missing"):
        download_archive(url, "0" * 32)
    assert not (keras_home / "datasets" / "cifar-10-binary.tar.gz").exists()


def test_unknown_class_name_is_rejected_by_params(tmp_path, capsys):
    out = tmp_path / "prepared"
    assert run_stage(write_params(tmp_path, class_name="frogs"), out) == 1
    assert "prepare.class_name" in one_error_line(capsys)
    assert not out.exists()


def test_the_official_extra_files_are_allowed(tmp_path):
    built = build_cifar_archive(tmp_path / "a.tar.gz", 10, extra_members={
        "cifar-10-batches-bin/readme.html": b"<html></html>"})
    train, test = read_cifar10_class(built["path"], "cat")
    np.testing.assert_array_equal(train, built["train"]["cat"])
    np.testing.assert_array_equal(test, built["test"]["cat"])


def damaged_archives(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Returns {case: (archive, pattern the error must match)}."""
    def build(name, **kwargs):
        return build_cifar_archive(tmp_path / f"{name}.tar.gz", 10, **kwargs)["path"]

    good = build("good").read_bytes()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(good[: len(good) // 2])
    not_gzip = tmp_path / "not_gzip.tar.gz"
    not_gzip.write_bytes(b"<html>404 Not Found</html>\n")
    not_tar = tmp_path / "not_tar.tar.gz"
    not_tar.write_bytes(gzip.compress(b"just some text, not a tar archive\n" * 50))
    plain_tar = tmp_path / "plain.tar"
    with tarfile.open(plain_tar, "w") as tar:
        tar.addfile(tarfile.TarInfo("cifar-10-batches-bin/x"), io.BytesIO())

    ragged = b"\0" * (3073 * 4 + 100)
    big_label = encode_batch(np.full(3, 10, np.uint8), np.zeros((3, 32, 32, 3), np.uint8))
    return {
        "truncated": (truncated, "not a readable .tar.gz"),
        "not gzip": (not_gzip, "not a readable .tar.gz"),
        "gzip of no tar": (not_tar, "not a readable .tar.gz"),
        "uncompressed tar": (plain_tar, "not a readable .tar.gz"),
        "missing batch": (build("missing", omit=["data_batch_3.bin"]),
                          "data_batch_3.bin missing"),
        "missing test batch": (build("no_test", omit=["test_batch.bin"]),
                               "test_batch.bin missing"),
        "extra batch": (build("extra", extra_members={
            "cifar-10-batches-bin/data_batch_6.bin": b""}), "unexpected member.*data_batch_6"),
        "file outside the folder": (build("outside", extra_members={"notes.txt": b"hi"}),
                                    "unexpected member 'notes.txt'"),
        "parent path": (build("evil", extra_members={"../evil": b"x"}),
                        r"unexpected member '\.\./evil'"),
        "dotted path": (build("evil2", extra_members={
            "cifar-10-batches-bin/../../evil.bin": b"x"}), "unexpected member"),
        "absolute path": (build("absolute", extra_members={"/tmp/evil": b"x"}),
                          "unexpected member '/tmp/evil'"),
        "duplicate batch": (build("duplicate", extra_members={
            "cifar-10-batches-bin/data_batch_1.bin": b""}), "appears twice"),
        "ragged batch": (build("ragged", replace={"data_batch_2.bin": ragged}),
                         ("ragged.tar.gz: cifar-10-batches-bin/data_batch_2.bin: 12392 bytes "
                          "is not a whole number of 3073-byte records, so the archive is "
                          "damaged; delete it so that it is downloaded again, and check "
                          "prepare.url and prepare.md5$")),
        "label above 9": (build("label", replace={"test_batch.bin": big_label}),
                          "label.tar.gz: cifar-10-batches-bin/test_batch.bin: label 10"),
        "batch as a symbolic link": (build("symlink", omit=["data_batch_1.bin"], symlinks={
            "cifar-10-batches-bin/data_batch_1.bin": "data_batch_2.bin"}),
            ("member 'cifar-10-batches-bin/data_batch_1.bin' is a symbolic link to "
             "'data_batch_2.bin'")),
        "batch as a hard link": (build("hardlink", omit=["test_batch.bin"], hardlinks={
            "cifar-10-batches-bin/test_batch.bin": "cifar-10-batches-bin/data_batch_5.bin"}),
            ("member 'cifar-10-batches-bin/test_batch.bin' is a hard link to "
             "'cifar-10-batches-bin/data_batch_5.bin'")),
        "link out of the archive": (build("outlink", symlinks={
            "cifar-10-batches-bin/readme.html": "/etc/passwd"}),
            "member 'cifar-10-batches-bin/readme.html' is a symbolic link to '/etc/passwd'"),
        "missing file": (tmp_path / "absent.tar.gz", "archive not found"),
    }


DAMAGE = ["truncated", "not gzip", "gzip of no tar", "uncompressed tar", "missing batch",
          "missing test batch", "extra batch", "file outside the folder", "parent path",
          "dotted path", "absolute path", "duplicate batch", "ragged batch", "label above 9",
          "batch as a symbolic link", "batch as a hard link", "link out of the archive",
          "missing file"]


@pytest.mark.parametrize("case", DAMAGE)
def test_damaged_archives_are_data_errors(tmp_path, case):
    cases = damaged_archives(tmp_path)
    assert sorted(cases) == sorted(DAMAGE)
    archive, pattern = cases[case]
    with pytest.raises(DataError, match=pattern):
        read_cifar10_class(archive, "frog")


@pytest.mark.parametrize("damage, expected", [
    (dict(omit=["data_batch_5.bin"]), "data_batch_5.bin missing"),
    (dict(omit=["data_batch_3.bin"],
          symlinks={"cifar-10-batches-bin/data_batch_3.bin": "data_batch_4.bin"}),
     ("member 'cifar-10-batches-bin/data_batch_3.bin' is a symbolic link to "
      "'data_batch_4.bin'; the binary CIFAR-10 archive holds only regular files, so check "
      "prepare.url and prepare.md5")),
    (dict(replace={"test_batch.bin": b"\0" * 3072}),
     ("cifar-10-batches-bin/test_batch.bin: 3072 bytes is not a whole number of 3073-byte "
      "records, so the archive is damaged; delete it so that it is downloaded again, and "
      "check prepare.url and prepare.md5")),
], ids=["missing batch", "symbolic link", "ragged batch"])
def test_a_damaged_archive_fails_the_stage_in_one_line(tmp_path, keras_home, capsys, damage,
                                                       expected):
    built = build_cifar_archive(tmp_path / "src" / "cifar-10-binary.tar.gz", 10, **damage)
    out = tmp_path / "prepared"
    params = write_params(tmp_path, url=built["path"].as_uri(), md5=built["md5"])
    assert run_stage(params, out) == 1
    line = one_error_line(capsys)
    assert f"error: {keras_home / 'datasets' / 'cifar-10-binary.tar.gz'}: " in line
    assert expected in line
    assert not out.exists()


def test_a_class_missing_from_a_split_is_a_data_error(tmp_path):
    built = build_cifar_archive(tmp_path / "few.tar.gz", 10, test_records=5)
    absent = [name for name, images in built["test"].items() if not len(images)][0]
    with pytest.raises(DataError, match=f"no '{absent}' images in the test batches"):
        read_cifar10_class(built["path"], absent)


# The image-folder source.

def solid(color, size=(40, 40), mode="RGB") -> Image.Image:
    return Image.new("RGB", size, color).convert(mode)


def make_folder(root: Path) -> list[tuple[int, int, int]]:
    """Writes ten images of assorted sizes and modes; returns their colours in sorted order."""
    (root / "b" / "deep").mkdir(parents=True)
    (root / "a").mkdir()
    images = {
        "a/0.png": solid((255, 0, 0), (50, 40), "RGBA"),
        "a/1.JPG": solid((128, 128, 128), (64, 64), "L"),
        "a/2.jpeg": solid((0, 0, 255), (17, 9)),
        "a/3.PNG": solid((0, 255, 0), (32, 32), "P"),
        "b/4.png": solid((10, 20, 30), (300, 200)),
        "b/deep/5.jpg": solid((200, 200, 0), (33, 47)),
        "b/deep/6.png": solid((0, 0, 0), (1, 1), "1"),
        "c7.png": solid((255, 255, 255), (32, 32), "LA"),
        "c8.png": solid((90, 0, 90), (2000, 20)),
        "c9.jpeg": solid((0, 90, 90), (20, 2000)),
    }
    for name, image in images.items():
        image.save(root / name)
    (root / "notes.txt").write_text("not an image")
    colors = []
    for name in sorted(images):
        image = images[name].convert("RGB")
        colors.append(image.getpixel((0, 0)))
    return colors


def test_image_folder_gives_32x32_rgb_and_a_seeded_split(tmp_path):
    colors = np.array(make_folder(tmp_path / "pics"), dtype=np.int16)
    train, test = read_image_folder(tmp_path / "pics", holdout_fraction=0.3, seed=7)

    assert (len(train), len(test)) == (7, 3)
    for images in (train, test):
        assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 3)
    # Each image is one flat colour, so its mean colour says which file it came from; both
    # sets must hold their files in sorted path order, and together hold every file once.
    means = [np.rint(images.reshape(len(images), -1, 3).mean(axis=1)) for images in (train, test)]
    index = [[int(np.argmin(np.abs(colors - m).sum(axis=1))) for m in set_means]
             for set_means in means]
    assert all(np.abs(colors[i] - m).max() <= 3 for ids, ms in zip(index, means)
               for i, m in zip(ids, ms))
    assert index[0] == sorted(index[0]) and index[1] == sorted(index[1])
    assert sorted(index[0] + index[1]) == list(range(10))

    again = read_image_folder(tmp_path / "pics", holdout_fraction=0.3, seed=7)
    np.testing.assert_array_equal(again[0], train)
    np.testing.assert_array_equal(again[1], test)


def test_images_are_centre_cropped(tmp_path):
    image = Image.new("RGB", (96, 32), (255, 0, 0))
    image.paste((0, 255, 0), (32, 0, 64, 32))
    image.paste((0, 0, 255), (64, 0, 96, 32))
    image.save(tmp_path / "wide.png")
    Image.new("RGB", (32, 32)).save(tmp_path / "other.png")
    train, test = read_image_folder(tmp_path, holdout_fraction=0.5, seed=0)
    both = np.concatenate([train, test])
    assert any((images[4:-4, 4:-4] == (0, 255, 0)).all() for images in both)


def test_stage_with_an_image_folder(tmp_path):
    make_folder(tmp_path / "pics")
    out = tmp_path / "prepared"
    params = write_params(tmp_path, source="images", images_dir=str(tmp_path / "pics"),
                          holdout_fraction=0.2)
    assert run_stage(params, out) == 0
    assert len(load_images(out / "train.npz")) == 8
    assert len(load_images(out / "test.npz")) == 2


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataError, match="image folder not found"):
        read_image_folder(tmp_path / "absent", holdout_fraction=0.1, seed=0)

    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "readme.txt").write_text("no pictures here")
    with pytest.raises(DataError, match="no .png, .jpg or .jpeg files"):
        read_image_folder(empty, holdout_fraction=0.1, seed=0)

    few = tmp_path / "few"
    few.mkdir()
    for i in range(3):
        solid((i, i, i)).save(few / f"{i}.png")
    with pytest.raises(DataError, match="leaves 0 reference and 3 training"):
        read_image_folder(few, holdout_fraction=0.1, seed=0)
    with pytest.raises(DataError, match="leaves 3 reference and 0 training"):
        read_image_folder(few, holdout_fraction=0.9, seed=0)

    (few / "sub").mkdir()
    corrupt = few / "sub" / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with pytest.raises(DataError, match="broken.jpg: not a readable image"):
        read_image_folder(few, holdout_fraction=0.5, seed=0)


def test_a_truncated_image_is_named(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(
        buffer, format="PNG")
    (tmp_path / "a.png").write_bytes(buffer.getvalue())
    (tmp_path / "b.png").write_bytes(buffer.getvalue()[:300])
    with pytest.raises(DataError, match="b.png: not a readable image"):
        read_image_folder(tmp_path, holdout_fraction=0.5, seed=0)


# A 32x32 ramp over the whole 16-bit range, so that loading it involves no resizing.
RAMP_16_BIT = np.linspace(0, 65535, 32 * 32).round().astype(np.uint16).reshape(32, 32)


@pytest.mark.parametrize("color_type", [GREY, GREY_ALPHA, RGB, RGB_ALPHA],
                         ids=["grey", "grey_alpha", "rgb", "rgb_alpha"])
def test_16_bit_pngs_are_scaled_to_8_bits(tmp_path, color_type):
    samples = np.repeat(RAMP_16_BIT[..., None], CHANNELS[color_type], axis=2)
    if color_type in (GREY_ALPHA, RGB_ALPHA):
        samples[..., -1] = 65535  # Opaque, so that the alpha channel changes nothing.
    path = tmp_path / "ramp.png"
    write_png(path, 32, 32, 16, color_type, (row.astype(">u2").tobytes() for row in samples))

    found = load_square(path)
    expected = np.rint(RAMP_16_BIT / 65535 * 255)
    assert found.shape == (32, 32, 3)
    assert np.abs(found - expected[..., None]).max() <= 1
    # Only the last sample of the ramp is white; clipping instead of scaling made most of them so.
    assert (found == 255).all(axis=2).sum() <= 4


def test_32_bit_samples_of_unknown_range_are_refused(tmp_path):
    # Pillow goes by content, not by name, so a floating-point TIFF can pass for a PNG.
    path = tmp_path / "depth.png"
    Image.new("F", (8, 8), 1234.5).save(path, format="TIFF")
    with pytest.raises(DataError, match="depth.png: TIFF image of 32-bit mode 'F'"):
        load_square(path)


def refuse_decoding(monkeypatch) -> list[tuple[int, int]]:
    """Makes every Pillow decode fail, and returns the list of the sizes it was asked for."""
    decoded = []

    def load(image):
        decoded.append(image.size)
        raise AssertionError(f"a {image.size} image was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return decoded


# Sizes just over the limit, over the size at which Pillow warns (89 million pixels), and over
# the size at which it refuses to open a file (179 million). Blank 1-bit PNGs of these sizes
# take a few kilobytes.
HUGE_SIZES = [(8193, 8192), (12000, 12000), (14000, 14000)]


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("width, height", HUGE_SIZES,
                         ids=["over_limit", "over_pillow_warning", "over_pillow_error"])
def test_an_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path, monkeypatch,
                                                                  width, height):
    assert dcgan.images.MAX_PIXELS < 8193 * 8192
    path = tmp_path / "huge.png"
    write_blank_png(path, width, height)
    decoded = refuse_decoding(monkeypatch)

    with pytest.raises(DataError) as caught:
        load_square(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    size = f"{width}x{height}" if width * height <= 2 * Image.MAX_IMAGE_PIXELS else "more than"
    assert size in message and f"limit of {dcgan.images.MAX_PIXELS} pixels" in message
    assert "scale it down" in message and "\n" not in message
    assert decoded == []


def test_the_pixel_limit_applies_to_the_size_a_jpeg_is_decoded_at(tmp_path, monkeypatch):
    monkeypatch.setattr(dcgan.images, "MAX_PIXELS", 200 * 200)
    picture = solid((30, 60, 90), (1024, 1024))
    picture.save(tmp_path / "big.jpg")
    picture.save(tmp_path / "big.png")
    solid((30, 60, 90), (200, 200)).save(tmp_path / "at_the_limit.png")
    solid((30, 60, 90), (201, 200)).save(tmp_path / "over_the_limit.png")

    # A JPEG decodes at 1/8 scale here, 128x128 pixels; a PNG always decodes in full.
    assert np.abs(load_square(tmp_path / "big.jpg").astype(int) - (30, 60, 90)).max() <= 3
    assert (load_square(tmp_path / "at_the_limit.png") == (30, 60, 90)).all()
    for name, size in (("big.png", "1024x1024"), ("over_the_limit.png", "201x200")):
        with pytest.raises(DataError, match=f"{name}: {size} .* limit of 40000 pixels"):
            load_square(tmp_path / name)


@pytest.mark.filterwarnings("error")
def test_a_huge_image_fails_the_stage_in_one_line(tmp_path, capsys):
    pictures = tmp_path / "pics"
    pictures.mkdir()
    solid((1, 2, 3)).save(pictures / "small.png")
    write_blank_png(pictures / "huge.png", 12000, 12000)
    out = tmp_path / "prepared"
    params = write_params(tmp_path, source="images", images_dir=str(pictures),
                          holdout_fraction=0.5)
    assert run_stage(params, out) == 1
    line = one_error_line(capsys)
    assert "huge.png: 12000x12000" in line and "limit of" in line
    assert not out.exists()


def test_image_folder_stage_failure_leaves_no_output(tmp_path, capsys):
    out = tmp_path / "prepared"
    params = write_params(tmp_path, source="images", images_dir=str(tmp_path / "absent"))
    assert run_stage(params, out) == 1
    assert "image folder not found" in one_error_line(capsys)
    assert not out.exists()
