"""The one atomic writer: a result appears whole or not at all, for files and folders alike."""

from __future__ import annotations

import os

import pytest

from cofitune.pipeline.io import atomic_path, atomic_write_text


def test_a_file_appears_whole_with_the_umasks_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a/b.txt", "hello")
    finally:
        os.umask(old)
    assert (tmp_path / "a/b.txt").read_text() == "hello"
    assert (tmp_path / "a/b.txt").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b.txt"]  # no temporary left


def test_a_failed_write_leaves_the_old_result_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_a_folder_is_published_whole_and_replaces_the_old_one(tmp_path):
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "stale.bin").write_text("x")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "weights.bin").write_text("w")
        assert not (target / "weights.bin").exists()  # not visible before the block ends
    assert sorted(p.name for p in target.iterdir()) == ["weights.bin"]
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "partial.bin").write_text("p")
            raise ValueError
    assert sorted(p.name for p in target.iterdir()) == ["weights.bin"] and len(list(tmp_path.iterdir())) == 1
