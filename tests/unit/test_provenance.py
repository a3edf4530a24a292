"""Provenance: the dirty-tree flag and the code hash see an uncommitted edit."""

import subprocess

from cofitune.pipeline.provenance import code_sha256, collect, git_state


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def _repo(tmp_path):
    (tmp_path / "cofitune").mkdir()
    (tmp_path / "cofitune" / "m.py").write_text("x = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    return tmp_path


def test_dirty_flag_follows_tracked_edits(tmp_path):
    repo = _repo(tmp_path)
    clean = git_state(repo)
    assert clean["dirty"] is False and len(clean["sha"]) == 40
    (repo / "untracked.txt").write_text("results are not code\n")
    assert git_state(repo)["dirty"] is False  # untracked outputs do not make a tree dirty
    (repo / "cofitune" / "m.py").write_text("x = 2\n")
    assert git_state(repo) == {"sha": clean["sha"], "dirty": True}


def test_git_state_outside_a_checkout_is_unknown(tmp_path):
    assert git_state(tmp_path) == {"sha": None, "dirty": None}


def test_code_hash_changes_with_package_code(tmp_path):
    repo = _repo(tmp_path)
    before = code_sha256(repo)
    (repo / "notes.md").write_text("docs do not change results\n")
    assert code_sha256(repo) == before
    (repo / "cofitune" / "m.py").write_text("x = 2\n")
    assert code_sha256(repo) != before


def test_meta_block_has_every_provenance_field():
    meta = collect(seed=7)
    assert {"versions", "git", "code_sha256", "fingerprint", "device", "peak_rss_mb", "seed"} <= set(meta)
    assert set(meta["fingerprint"]) == {"sha256", "parts"} and len(meta["fingerprint"]["sha256"]) == 64
    import torch

    assert meta["versions"]["torch"] == torch.__version__
    assert meta["device"]["cuda"] is torch.cuda.is_available() and meta["device"]["cpu_threads"] >= 1
    amx = torch.cpu._is_amx_tile_supported()
    assert meta["device"]["cpu"].endswith(f"AMX {amx}")  # bf16 hardware: what makes CPU timings comparable
