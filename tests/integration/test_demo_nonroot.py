"""`make demo` as an unprivileged user with no Chromium on PATH (a cluster login node, a workstation): the DAG and
the report finish, and the skipped screenshot is said in one line. The real model's demo takes ~27 min, so
the same Makefile path runs here on the tiny test config (DEMO_ARGS).

The user gets its own virtual environment on the system's Python 3.11 whose site directory is this checkout's
installed environment (a `.pth` line), so nothing is reinstalled: the checkout's own interpreter may live where
an unprivileged user cannot run it (pyenv under /root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="switching to an unprivileged user needs root")]
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "results", "logs", ".snakemake", "benchmarks", "docs",
                                     "__pycache__", "*.egg-info")


def _path_without_chromium(bin_dir: Path) -> str:
    """A PATH of links to every system tool except Chromium and Chrome."""
    bin_dir.mkdir()
    for folder in ("/usr/local/bin", "/usr/bin", "/bin"):
        for tool in Path(folder).iterdir():
            link = bin_dir / tool.name
            if "chrom" not in tool.name and not link.exists() and os.access(tool, os.X_OK):
                link.symlink_to(tool)
    return str(bin_dir)


SYSTEM_PYTHON = Path("/usr/bin/python3.11")


def _user_venv(venv: Path) -> None:
    """A venv on the system interpreter that sees the installed packages and console scripts `make` calls."""
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True)
    site = ROOT / ".venv" / "lib" / "python3.11" / "site-packages"
    (venv / "lib" / "python3.11" / "site-packages" / "cofitune-env.pth").write_text(
        f"import site; site.addsitedir({str(site)!r})\n")
    for tool, module in (("snakemake", "snakemake.cli"),):
        script = venv / "bin" / tool
        script.write_text(f"#!{venv}/bin/python\nimport sys\nfrom {module} import main\nsys.exit(main())\n")
        script.chmod(0o755)
    # `make` rebuilds the environment when pyproject.toml is newer than this marker
    os.utime(venv / "bin" / "snakemake", ns=(2**62, 2**62))


@pytest.mark.skipif(not SYSTEM_PYTHON.is_file(), reason="needs the system's Python 3.11 for the user's venv")
def test_make_demo_as_an_unprivileged_user_without_chromium():
    site = ROOT / ".venv" / "lib" / "python3.11" / "site-packages"
    readable = subprocess.run(["runuser", "-u", "nobody", "--", "test", "-r", str(site / "snakemake" / "__init__.py")])
    if readable.returncode != 0:  # the user's venv sees the packages of this checkout's venv through a .pth line
        pytest.skip(f"{site} is not readable by an unprivileged user (a parent folder is private, e.g. a "
                    "`mktemp -d` folder): run this test from a checkout under a world-readable folder")
    base = Path(tempfile.mkdtemp(prefix="cofitune-nonroot-", dir="/tmp"))
    try:
        base.chmod(0o755)
        repo = base / "repo"
        shutil.copytree(ROOT, repo, ignore=COPY_IGNORE)
        _user_venv(repo / ".venv")
        (repo / "small.yaml").write_text("models: [tiny-llama-8]\nsearch: {enabled: false}\nmethods:\n"
                                         "  - {method: original, variant: base}\n  - {method: full_sft, variant: all}\n")
        home = base / "home"
        home.mkdir()
        path = _path_without_chromium(base / "bin")
        subprocess.run(["chown", "-R", "nobody:nogroup", str(repo), str(home)], check=True)
        env = {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8"}
        proc = subprocess.run(
            ["runuser", "-u", "nobody", "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()), "make", "-C",
             str(repo), "demo", "DEMO_ARGS=--configfile config/test.yaml small.yaml"],
            capture_output=True, text=True, timeout=3600)  # a hang guard only
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-5000:]
        assert out.count("no Chromium, and no root + apt-get to install it") == 1
        skipped = [line for line in out.splitlines() if "report screenshot skipped" in line]
        assert len(skipped) == 1 and "make screenshot" in skipped[0]
        assert (repo / "results/tables/main.md").is_file() and (repo / "results/report.html").stat().st_size > 0
        assert not (repo / "results/report_pareto.png").exists()
    finally:
        shutil.rmtree(base)
