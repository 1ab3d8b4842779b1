"""Outputs are replaced whole or not at all."""
import os

import pytest

from aekit import files


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
