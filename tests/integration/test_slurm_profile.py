"""The SLURM workflow profile itself (workflow/profiles/slurm/config.yaml), not an override of it.

tests/integration/test_slurm.py runs the DAG on a one-node cluster and so restates every resource of the
profile for that node. This test reads the profile and checks that the jobs Snakemake would submit under it
carry the profile's own resources: a dry run with ``--workflow-profile workflow/profiles/slurm`` (no cluster
needed), each job's ``resources:`` compared with the profile's default-resources overlaid by its
set-resources for that rule, expressions such as ``"30 * attempt"`` evaluated at the first attempt.
Marked ``slow`` (one Snakemake dry run, about 20 s).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cofitune.pipeline.launch import offline_env
from tests.integration.test_slurm import EXTRA  # the tiny DAG of test_slurm.py: one model, one row of each job kind

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "workflow/profiles/slurm"
pytestmark = pytest.mark.slow



def profile_value(value, attempt: int = 1) -> str:
    """A profile resource as Snakemake reads it: a Python expression of ``attempt`` when it is one, else the
    string itself (``"debug"``), printed as the dry run prints it."""
    if isinstance(value, str):
        try:
            value = eval(value, {"__builtins__": {}}, {"attempt": attempt})  # noqa: S307 (the profile's own text)
        except (NameError, SyntaxError):
            pass
    return str(value)


def expected_resources(profile: dict, rule: str) -> dict[str, str]:
    return {k: profile_value(v) for k, v in {**profile["default-resources"],
                                             **(profile.get("set-resources", {}).get(rule) or {})}.items()}


def dry_run_resources(output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, {resource: value}) of every job a dry run lists."""
    jobs = []
    for block in re.split(r"\n\s*\n", output):
        head = re.search(r"^(?:local)?(?:rule|checkpoint) (\w+):$", block, re.M)
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        if head and res:
            jobs.append((head.group(1), dict(kv.split("=", 1) for kv in res.group(1).split(", "))))
    return jobs


def test_jobs_under_the_slurm_profile_carry_its_own_resources(tmp_path):
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    extra = tmp_path / "tiny.yaml"
    extra.write_text(EXTRA)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path / "work"),
           "--configfile", str(ROOT / "config/test.yaml"), str(extra), "--workflow-profile", str(PROFILE), "-n"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env=offline_env(PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}"))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Using workflow specific profile" in out, out[:2000]
    jobs = dry_run_resources(out)
    assert jobs, out[-3000:]
    # every rule the profile names is in this DAG, so each of its entries is checked below
    assert set(profile["set-resources"]) <= {rule for rule, _ in jobs}, sorted({rule for rule, _ in jobs})
    for rule, got in jobs:
        want = expected_resources(profile, rule)
        assert {k: got.get(k) for k in want} == want, rule
    # the profile's pitfall 3, as submitted: GPU rules ask for GPUs and CPUs per GPU, never tasks
    for rule, got in jobs:
        if rule in ("compute_importance", "train", "evaluate"):
            assert int(got["gpu"]) >= 1 and int(got["cpus_per_gpu"]) >= 1 and "tasks" not in got, rule
