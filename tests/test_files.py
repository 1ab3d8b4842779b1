"""Outputs are replaced whole or not at all, as strict JSON, with the modes the umask asks for."""

import contextlib
import json
import math
import os
import stat
import tempfile

import numpy as np
import pytest

from aekit import files
from aekit.files import atomic_directory, atomic_file, write_json_atomic


@contextlib.contextmanager
def umask(value):
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def mode_of(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def files_of(directory):
    return {p.name: p.read_bytes() for p in directory.iterdir()}


# -- single files ----------------------------------------------------------------------------
def test_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "sub" / "out.json"
    files.write_text_atomic(path, "first")
    files.write_text_atomic(path, "second")
    assert path.read_text() == "second"
    assert os.listdir(path.parent) == ["out.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    path.write_text("precious")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        files.write_bytes_atomic(path, b"new")
    assert path.read_text() == "precious"
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_atomic_file_publishes_only_when_the_block_succeeds(tmp_path):
    path = tmp_path / "data.bin"
    with atomic_file(path) as f:
        f.write(b"one")
        assert not path.exists()  # nothing is visible before the block ends
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_file(path) as f:
            f.write(b"two, half written")
            raise RuntimeError("interrupted")
    assert path.read_bytes() == b"one"
    assert os.listdir(tmp_path) == ["data.bin"]
    with pytest.raises(RuntimeError):
        with atomic_file(tmp_path / "new.bin"):
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == ["data.bin"]


def test_atomic_file_modes(tmp_path):
    with atomic_file(tmp_path / "text.txt", "w") as f:
        f.write("café\n")
    assert (tmp_path / "text.txt").read_bytes() == "café\n".encode("utf-8")
    with atomic_file(tmp_path / "checked.bin", "w+b") as f:
        f.write(b"written")
        f.seek(0)
        assert f.read() == b"written"  # what a caller checks before it is published
    assert (tmp_path / "checked.bin").read_bytes() == b"written"
    with pytest.raises(ValueError, match="writing mode"):
        with atomic_file(tmp_path / "log.txt", "a"):
            pass
    assert sorted(os.listdir(tmp_path)) == ["checked.bin", "text.txt"]


# -- strict JSON -----------------------------------------------------------------------------
def _refuse(constant):
    raise AssertionError(f"{constant} is not JSON")


def test_json_is_strict_non_finite_floats_become_null(tmp_path):
    path = tmp_path / "m.json"
    obj = {
        "loss": math.nan,
        "best": -math.inf,
        "curve": [1.0, math.inf, (2, math.nan)],
        "deep": {"deeper": [{"x": float("-inf")}]},
        "fine": 0.5,
    }
    write_json_atomic(path, obj)
    text = path.read_text()
    assert text.endswith("}\n") and text.startswith('{\n  "loss": null')  # indent 2, newline
    assert json.loads(text, parse_constant=_refuse) == {
        "loss": None,
        "best": None,
        "curve": [1.0, None, [2, None]],
        "deep": {"deeper": [{"x": None}]},
        "fine": 0.5,
    }


def test_json_converts_numpy_values(tmp_path):
    path = tmp_path / "m.json"
    obj = {
        "n": np.int64(3),
        "mse": np.float32(0.25),
        "bad": np.float64("nan"),
        "ok": np.bool_(True),
        "curve": np.array([0.5, np.inf, -np.inf, np.nan]),
        "grid": np.arange(4).reshape(2, 2),
        "by_label": {np.int64(7): np.float32("nan")},
    }
    write_json_atomic(path, obj)
    assert json.loads(path.read_text(), parse_constant=_refuse) == {
        "n": 3,
        "mse": 0.25,
        "bad": None,
        "ok": True,
        "curve": [0.5, None, None, None],
        "grid": [[0, 1], [2, 3]],
        "by_label": {"7": None},
    }


def test_json_that_cannot_be_written_keeps_the_old_file(tmp_path):
    path = tmp_path / "m.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["m.json"]


# -- modes -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mask", "file_mode"),
    [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)],
    ids=["umask022", "umask077", "umask002"],
)
def test_files_get_the_mode_open_would_give(tmp_path, mask, file_mode):
    with umask(mask):
        files.write_text_atomic(tmp_path / "a.txt", "a")
        write_json_atomic(tmp_path / "a.json", {})
        with atomic_file(tmp_path / "a.bin") as f:
            f.write(b"a")
    assert {mode_of(p) for p in tmp_path.iterdir()} == {file_mode}


@pytest.mark.parametrize(
    ("mask", "file_mode", "dir_mode"),
    [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)],
    ids=["umask022", "umask077"],
)
def test_directories_and_what_others_write_in_them_get_umask_modes(tmp_path, mask, file_mode, dir_mode):
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    outside.chmod(0o640)
    target = tmp_path / "out" / "model"
    with umask(mask):
        with atomic_directory(target) as tmp:
            (tmp / "plain.txt").write_text("open()")
            fd, _ = tempfile.mkstemp(dir=tmp)  # 0600, as a library writing via mkstemp leaves it
            os.close(fd)
            nested = tempfile.mkdtemp(dir=tmp)  # 0700
            (tmp / "nested.txt").write_text("x")
            os.replace(tmp / "nested.txt", os.path.join(nested, "inner.txt"))
            (tmp / "link").symlink_to(outside)
    everything = [target, *target.rglob("*")]
    assert {mode_of(p) for p in everything if p.is_dir()} == {dir_mode}
    assert {mode_of(p) for p in everything if p.is_file() and not p.is_symlink()} == {file_mode}
    assert len(everything) == 6 and (target / "link").is_symlink()
    assert mode_of(outside) == 0o640  # a link is not followed
    assert mode_of(tmp_path / "out") == 0o777 & ~mask  # parents are made with os.mkdir's mode


def test_umask_is_read_without_proc(monkeypatch):
    def no_proc(*args, **kwargs):
        raise FileNotFoundError("/proc/self/status")

    monkeypatch.setattr(files, "open", no_proc, raising=False)
    with umask(0o027):
        assert files._umask() == 0o027
        assert os.umask(0o027) == 0o027  # and it was set back


# -- directories -----------------------------------------------------------------------------
def test_atomic_directory_publishes_only_on_success(tmp_path):
    target = tmp_path / "out"
    with atomic_directory(target) as tmp:
        assert tmp.parent == tmp_path and not target.exists()
        (tmp / "a.txt").write_text("one")
    with pytest.raises(RuntimeError):
        with atomic_directory(target, is_own=lambda p: True) as tmp:
            (tmp / "a.txt").write_text("two")
            raise RuntimeError("interrupted")
    assert (target / "a.txt").read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    with pytest.raises(FileExistsError):  # non-empty and not claimed by is_own
        with atomic_directory(target):
            pass


def test_overwrite_replaces_an_own_directory_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "model"
    with atomic_directory(target) as tmp:
        (tmp / "old.txt").write_text("old")
    with atomic_directory(target, is_own=lambda p: (p / "old.txt").exists()) as tmp:
        (tmp / "new.txt").write_text("new")
    assert files_of(target) == {"new.txt": b"new"}
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary, no old copy


def test_overwrite_false_refuses_an_existing_directory(tmp_path):
    target = tmp_path / "model"
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("one")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        with atomic_directory(target, overwrite=False, is_own=lambda p: True) as tmp:
            (tmp / "a.txt").write_text("two")
    assert files_of(target) == {"a.txt": b"one"}
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_creates_parents_and_replaces_an_empty_directory(tmp_path):
    with atomic_directory(tmp_path / "a" / "b") as tmp:
        (tmp / "x").write_text("x")
    (tmp_path / "empty").mkdir()
    with atomic_directory(tmp_path / "empty") as tmp:
        (tmp / "y").write_text("y")
    assert files_of(tmp_path / "a" / "b") == {"x": b"x"}
    assert files_of(tmp_path / "empty") == {"y": b"y"}


def test_unrelated_files_are_never_replaced(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"meow")
    file = tmp_path / "notes.txt"
    file.write_text("keep me")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "empty", target_is_directory=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileExistsError, match="did not write"):
        with atomic_directory(folder):
            pass
    with pytest.raises(FileExistsError, match="not a directory"):
        with atomic_directory(file, is_own=lambda p: True):
            pass
    with pytest.raises(FileExistsError, match="not a directory"):
        with atomic_directory(link, is_own=lambda p: True):
            pass
    assert (folder / "cat.jpg").read_bytes() == b"meow" and file.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "link", "notes.txt", "photos"]


def test_failed_write_keeps_the_previous_directory(tmp_path):
    target = tmp_path / "model"
    with atomic_directory(target) as tmp:
        (tmp / "weights").write_bytes(b"good")
    for path in (target, tmp_path / "new"):
        with pytest.raises(OSError, match="disk full"):
            with atomic_directory(path, is_own=lambda p: True) as tmp:
                (tmp / "weights").write_bytes(b"\x00" * 10)
                raise OSError("disk full")
    assert files_of(target) == {"weights": b"good"}
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary or half directory


def test_a_failed_swap_puts_the_old_directory_back(tmp_path, monkeypatch):
    target = tmp_path / "model"
    with atomic_directory(target) as tmp:
        (tmp / "weights").write_bytes(b"good")
    real_rename, calls = os.rename, []

    def rename_failing_the_second_time(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the old directory is aside; the new one fails to move in
            raise OSError("rename failed")
        real_rename(src, dst)

    monkeypatch.setattr(files.os, "rename", rename_failing_the_second_time)
    with pytest.raises(OSError, match="rename failed"):
        with atomic_directory(target, is_own=lambda p: True) as tmp:
            (tmp / "weights").write_bytes(b"new")
    assert files_of(target) == {"weights": b"good"}
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
