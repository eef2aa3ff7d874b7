"""Whether a commit's committed outputs match its params and code, judged by its dvc.lock."""

import hashlib

import pytest
import yaml

from dcgan import staleness


class Commit:
    """A commit's files in memory, read as dcgan.revisions.Revision reads them."""

    def __init__(self, files):
        self.files = files

    def read(self, path):
        return self.files.get(path)

    def read_yaml(self, path):
        data = self.read(path)
        return None if data is None else yaml.safe_load(data)


def md5(data):
    return hashlib.md5(data).hexdigest()


def pipeline_commit():
    """One stage `evaluate` that ran with exactly these params, code and reports."""
    code, metrics = b"print('evaluate')\n", b'{"swd_32": 1.0}\n'
    dvc_yaml = {"stages": {"evaluate": {
        "cmd": "python code.py", "deps": ["code.py", "data/samples.npz"],
        "params": ["evaluate"], "metrics": [{"reports/metrics.json": {"cache": False}}]}}}
    lock = {"schema": "2.0", "stages": {"evaluate": {
        "cmd": "python code.py",
        "deps": [{"path": "code.py", "hash": "md5", "md5": md5(code)},
                 {"path": "data/samples.npz", "hash": "md5", "md5": "0" * 32}],
        "params": {"params.yaml": {"evaluate": {"seed": 0, "inception": "off"}}},
        "outs": [{"path": "reports/metrics.json", "hash": "md5", "md5": md5(metrics)}]}}}
    return {"dvc.yaml": yaml.safe_dump(dvc_yaml).encode(),
            "dvc.lock": yaml.safe_dump(lock).encode(),
            "params.yaml": b"evaluate:\n  seed: 0\n  inception: 'off'\n",
            "code.py": code, "reports/metrics.json": metrics}


def test_staleness_of_a_consistent_commit_is_none():
    result = staleness.check(Commit(pipeline_commit()))
    assert not result.stale and result.unchecked is None


@pytest.mark.parametrize("edit, reason", [
    ({"reports/metrics.json": b'{"swd_32": 0.5}\n'},
     "stage `evaluate`: `reports/metrics.json` is not the file the stage wrote (its md5 "
     "differs from dvc.lock's)"),
    ({"reports/metrics.json": None}, "stage `evaluate`: its output `reports/metrics.json` is "
                                     "not committed"),
    ({"code.py": b"print('faster')\n"}, "stage `evaluate`: `code.py` changed since the stage ran"),
    ({"params.yaml": b"evaluate:\n  seed: 1\n  inception: 'off'\n"},
     "stage `evaluate`: param `evaluate.seed` is 1 in params.yaml, but the stage ran with 0"),
    ({"params.yaml": b"evaluate:\n  seed: 0\n"},
     "stage `evaluate`: param `evaluate.inception` is (absent) in params.yaml, but the stage "
     "ran with off"),
    ({"dvc.yaml": b"stages:\n  evaluate:\n    cmd: python code.py --fast\n"},
     "stage `evaluate`: its command in dvc.yaml is not the one it ran"),
    ({"dvc.yaml": b"stages:\n  evaluate:\n    cmd: python code.py\n    deps: [more.py]\n"},
     "stage `evaluate`: dvc.yaml lists `more.py`, which it did not run with"),
    ({"dvc.yaml": b"stages:\n  train:\n    cmd: python train.py\n"},
     "stage `train` has never run: dvc.yaml has it, dvc.lock does not"),
])
def test_staleness_names_what_changed_since_the_run(edit, reason):
    files = pipeline_commit()
    for path, data in edit.items():
        if data is None:
            del files[path]
        else:
            files[path] = data
    assert staleness.check(Commit(files)).reasons == [reason]


def test_staleness_without_dvc_lock_says_it_cannot_check():
    files = pipeline_commit()
    del files["dvc.lock"]
    result = staleness.check(Commit(files))
    assert not result.stale and "no dvc.lock is committed" in result.unchecked


def test_staleness_accepts_dvc2_digests_of_text_with_crlf():
    files = pipeline_commit()
    files["code.py"] = files["code.py"].replace(b"\n", b"\r\n")  # DVC 2 hashed it as LF.
    assert not staleness.check(Commit(files)).stale
