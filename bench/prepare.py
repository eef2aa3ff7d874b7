"""Times the prepare stage's CIFAR-10 reading and writing on a full-size archive."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # For tests.cifar_archive, the fixture builder.

import yaml  # noqa: E402

from dcgan.artifacts import load_images, save_npz  # noqa: E402
from dcgan.cifar import download_archive, read_cifar10_class  # noqa: E402
from tests.cifar_archive import build_cifar_archive  # noqa: E402

GOAL_SECONDS = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10000, help="records per batch")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        # Photo-like pixels, so gzip has about as much work as on the real archive.
        built = build_cifar_archive(tmp / "src" / "cifar-10-binary.tar.gz", args.records,
                                    smooth=True, compresslevel=6)
        size = built["path"].stat().st_size
        raw = 6 * args.records * 3073
        print(f"built {size / 1e6:.1f} MB archive ({size / raw:.2f} of {raw / 1e6:.1f} MB raw) "
              f"in {time.perf_counter() - start:.1f} s")
        # The download is not timed: fetch into the cache once, then time the cached path.
        archive = download_archive(built["path"].as_uri(), built["md5"], cache_dir=tmp / "keras")

        rows = []
        for _ in range(args.repeats):
            times = {"cached md5 check": time.perf_counter()}
            download_archive(built["path"].as_uri(), built["md5"], cache_dir=tmp / "keras")
            times["read frog class"] = time.perf_counter()
            train, test = read_cifar10_class(archive, "frog")
            times["write npz"] = time.perf_counter()
            save_npz(tmp / "out" / "train.npz", images=train)
            save_npz(tmp / "out" / "test.npz", images=test)
            times["end"] = time.perf_counter()
            marks = list(times.values())
            rows.append([b - a for a, b in zip(marks, marks[1:])])
        assert len(train) == 5 * args.records // 10 and len(test) == args.records // 10
        stage_seconds = time_stage(tmp, built)

    names = list(times)[:-1]
    best = [min(column) for column in zip(*rows)]
    print(f"\n{'step':<20} {'best of ' + str(args.repeats):>10}")
    for name, seconds in zip(names, best):
        print(f"{name:<20} {seconds:>9.2f}s")
    total = sum(best)
    verdict = "ok" if total <= GOAL_SECONDS else "OVER GOAL"
    print(f"{'total':<20} {total:>9.2f}s   goal <= {GOAL_SECONDS:.0f} s: {verdict}")
    print(f"({len(train)} train + {len(test)} test frog images)")
    print(f"\nwhole stage, archive cached: python stages/prepare.py took {stage_seconds:.2f}s "
          f"(Python start-up included; TensorFlow loads only to download)")


def time_stage(tmp: Path, built: dict) -> float:
    """Runs the stage script once, as DVC would, with the archive already in the cache."""
    params = tmp / "params.yaml"
    params.write_text(yaml.safe_dump({"prepare": dict(
        source="cifar10", url=built["path"].as_uri(), md5=built["md5"], class_name="frog",
        images_dir=None, holdout_fraction=0.1, seed=0)}))
    env = dict(os.environ, KERAS_HOME=str(tmp / "keras"))
    start = time.perf_counter()
    subprocess.run([sys.executable, str(REPO / "stages" / "prepare.py"), "--params",
                    str(params), "--out", str(tmp / "prepared")],
                   env=env, cwd=REPO, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    assert len(load_images(tmp / "prepared" / "train.npz")) == len(built["train"]["frog"])
    return seconds


if __name__ == "__main__":
    main()
