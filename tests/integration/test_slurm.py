"""The tiny DAG through a REAL single-node SLURM cluster, with the project's workflow profile.

Marked ``slow``. Needs root: the module fixture installs Debian `slurm-wlm` + `munge` with apt-get when
`slurmctld` is missing, starts the daemons it needs and stops exactly those at the end (slurm_cluster.py).

One scenario (the module fixture): the DAG submitted, a RUNNING train job `scancel`led, the run repeated.
- test_every_job_ran_as_a_completed_slurm_job: every non-local rule became an `sbatch` job; each job that
  finished is COMPLETED in `scontrol`; the table has the three rows.
- test_a_cancelled_training_job_resumes_alone: the rerun redoes the cancelled job (and what never ran) and
  leaves every finished output untouched.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from cofitune.pipeline.launch import offline_env
from tests.integration.slurm_cluster import ClusterError, SlurmCluster, job_state, run

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

EXTRA = """\
models: [tiny-llama-8]
search: {enabled: false}
methods:
  - {method: original, variant: base}
  - {method: full_sft, variant: all}
  - method: cofitune
    variant: ffn-bottom2-update
    params: {layers: bottom2, modules: ffn, target: update}
"""
ROWS = [("original", "base"), ("full_sft", "all"), ("cofitune", "ffn-bottom2-update")]

# This node: a few CPUs, no GPU. CLI --set-resources replaces the profile's whole per-rule mapping, so every
# heavy rule is restated here (gpu=0: no --gpus in sbatch; small mem_mb: under the node's RealMemory).
# --max-threads 1 reaches the jobs too: one torch thread per 1-CPU job (task/none does not confine them).
SMALL_NODE = [
    "--max-threads", "1",
    "--default-resources", "slurm_partition=debug", "mem_mb=1500", "runtime=30", "cpus_per_task=1",
    "--set-resources",
    *(f"{rule}:{key}={value}" for rule in ("prepare_model", "compute_importance", "train", "evaluate")
      for key, value in (("gpu", 0), ("mem_mb", 1200))),
]
SLURM = ["--workflow-profile", str(ROOT / "workflow/profiles/slurm"), "--jobs", "2", "--retries", "0",
         "--slurm-keep-successful-logs",  # the plugin deletes a successful job's log by default
         *SMALL_NODE]
DAG_TIMEOUT = 3600  # seconds; the CI node may be shared with other work

SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+)(?: \(log: (\S+?)\))?")  # plugin 2.x
FINISHED = re.compile(r"Finished jobid: (\d+) \(Rule: (\w+)\)")


# --------------------------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def cluster():
    try:
        c = SlurmCluster().up()
    except ClusterError as e:
        pytest.fail(f"could not set up the single-node SLURM cluster: {e}", pytrace=False)
    yield c
    c.down()


def command(work: Path, extra: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(work),
            "--configfile", str(ROOT / "config/test.yaml"), str(extra), *args]


def environment() -> dict[str, str]:
    return offline_env(PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")


def start(work: Path, extra: Path, *args: str, log: Path) -> subprocess.Popen:
    with open(log, "w") as out:  # a file, never a pipe: a long run cannot block on a full pipe
        return subprocess.Popen(command(work, extra, *args), stdout=out, stderr=subprocess.STDOUT, text=True,
                                env=environment(), cwd=ROOT)


def snakemake(work: Path, extra: Path, *args: str, log: Path) -> tuple[int, str, float]:
    """Run to the end: (exit code, combined output, wall seconds)."""
    t0 = time.monotonic()
    proc = start(work, extra, *args, log=log)
    try:
        proc.wait(DAG_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait(120)
    return proc.returncode, log.read_text(), time.monotonic() - t0


def why(output: str, cluster: SlurmCluster | None = None, n: int = 4000) -> str:
    """Assertion context: the tail of Snakemake's output, plus the daemons' logs."""
    text = f"\n----- snakemake output (last {n} chars)\n{output[-n:]}"
    if cluster is not None:
        text += "\n" + cluster.logs(40)
    return text


def jobs(output: str) -> dict[str, dict]:
    """Snakemake jobid -> {rule, wildcards, output, slurm_id, slurm_log, finished} from a run's output."""
    found: dict[str, dict] = {}
    for block in re.split(r"\n\s*\n", output):
        head = re.search(r"^(?:local)?(?:rule|checkpoint) (\w+):$", block, re.M)
        jobid = re.search(r"^\s+jobid: (\d+)$", block, re.M)
        if head and jobid:
            wildcards = re.search(r"^\s+wildcards: (.*)$", block, re.M)
            outputs = re.search(r"^\s+output: (.*)$", block, re.M)
            found[jobid.group(1)] = dict(rule=head.group(1), wildcards=wildcards.group(1) if wildcards else "",
                                         output=outputs.group(1).split(", ") if outputs else [],
                                         slurm_id=None, slurm_log=None, finished=False)
    for jobid, slurm_id, log in SUBMITTED.findall(output):
        found.setdefault(jobid, dict(rule="?", wildcards="", output=[], finished=False))  # block not seen
        found[jobid].update(slurm_id=slurm_id, slurm_log=log)
    for jobid, rule in FINISHED.findall(output):
        found.setdefault(jobid, dict(rule=rule, wildcards="", output=[], slurm_id=None))["finished"] = True
    return found


def mtimes(work: Path, paths: list[str]) -> dict[str, float]:
    """path -> mtime for every file of the given outputs (a directory output: each file inside)."""
    times = {}
    for rel in paths:
        p = work / rel
        for f in ([p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file())):
            times[str(f.relative_to(work))] = f.stat().st_mtime_ns
    return times


def table_rows(work: Path) -> list[tuple[str, str]]:
    df = pd.read_csv(work / "results/tables/main.csv")
    return list(zip(df.method, df.variant))


# ------------------------------------------------------------------------------------------------------ tests
@pytest.fixture(scope="module")
def cancelled_then_resumed(cluster, tmp_path_factory):
    """One scenario, the way a cluster user meets it: the tiny DAG submitted through the SLURM profile, a
    RUNNING train job `scancel`led (the run stops: --retries 0), the same command run again to the end."""
    tmp = tmp_path_factory.mktemp("slurm")
    extra = tmp / "tiny.yaml"
    extra.write_text(EXTRA)
    work = tmp / "work"
    first_log = tmp / "first.log"
    proc = start(work, extra, *SLURM, log=first_log)
    try:
        cancelled = cancel_first_running_train(proc, first_log)
        rc = proc.wait(600)  # the scheduler stops after the failure (running jobs are finished or cancelled)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(120)
    first = first_log.read_text()
    assert rc != 0, "snakemake should fail once its train job is cancelled (--retries 0)" + why(first)
    done = {(j["rule"], j["wildcards"]): j for j in jobs(first).values() if j["finished"]}
    before = mtimes(work, [o for j in done.values() for o in j["output"]])
    rc, second, slurm_s = snakemake(work, extra, *SLURM, log=tmp / "second.log")
    assert rc == 0, "the rerun failed" + why(second, cluster)
    return dict(work=work, cancelled=cancelled, first=first, second=second, before=before, rerun_s=slurm_s)


def test_every_job_ran_as_a_completed_slurm_job(cancelled_then_resumed, cluster):
    """Every non-local rule became an `sbatch` job; every job that finished is COMPLETED in `scontrol` with its
    log kept; the localrules stayed local; the resumed run's table has the three rows."""
    run_ = cancelled_then_resumed
    out = run_["first"] + run_["second"]
    assert table_rows(run_["work"]) == ROWS, why(run_["second"])
    submitted = [info for text in (run_["first"], run_["second"]) for info in jobs(text).values()
                 if info.get("slurm_id")]
    finished = [info for info in submitted if info["finished"]]
    by_rule: dict[str, set[str]] = {}
    for info in finished:
        by_rule.setdefault(info["rule"], set()).add(info["wildcards"])
    assert len(by_rule.get("train", ())) == 2 and len(by_rule.get("evaluate", ())) == 3, (
        f"expected 2 train + 3 evaluate finished SLURM jobs over the two runs, got {by_rule}" + why(out))
    assert not {"aggregate_results", "plot_pareto"} & {info["rule"] for info in submitted}  # localrules stay local
    for info in finished:
        state = job_state(info["slurm_id"])
        assert state == "COMPLETED", (f"{info['rule']} ({info['wildcards']}): SLURM job {info['slurm_id']} is "
                                      f"{state}" + why(out, cluster))
        log = Path(info["slurm_log"] or "<no log path in the submission line>")
        assert log.is_file() and (run_["work"] / ".snakemake/slurm_logs") in log.parents, (
            f"no SLURM log {log} for {info['rule']}" + why(out))
    report = {"rerun_wall_s": round(run_["rerun_s"], 1), "n_finished_slurm_jobs": len(finished),
              "slurm_jobs": {rule: len(w) for rule, w in sorted(by_rule.items())}, "cpus": os.cpu_count()}
    print(f"\nSLURM runs: {json.dumps(report)}")


def test_a_cancelled_training_job_resumes_alone(cancelled_then_resumed, cluster):
    """The rerun redoes the cancelled train job and what was never run, and leaves every finished output
    untouched."""
    run_ = cancelled_then_resumed
    work, cancelled, first, second = run_["work"], run_["cancelled"], run_["first"], run_["second"]
    first_jobs = jobs(first)
    victim = next((j for j in first_jobs.values() if j.get("slurm_id") == cancelled), None)
    assert victim and victim["rule"] == "train", f"SLURM job {cancelled} is not a train job" + why(first)
    assert not victim["finished"] and job_state(cancelled) == "CANCELLED", why(first, cluster)
    done = {(j["rule"], j["wildcards"]): j for j in first_jobs.values() if j["finished"]}
    assert ("prepare_model", "model=tiny-llama-8") in done, "train ran before its inputs finished?" + why(first)
    before = run_["before"]
    assert before, "no finished outputs to protect" + why(first)
    rerun = {(j["rule"], j["wildcards"]) for j in jobs(second).values()}
    assert ("train", victim["wildcards"]) in rerun, "the cancelled train job was not run again" + why(second)
    assert all((work / o).exists() for o in victim["output"]), why(second)
    redone = sorted(set(done) & rerun)
    assert not redone, f"finished jobs ran again: {redone}" + why(second)
    changed = sorted(p for p, t in before.items() if not (work / p).exists() or (work / p).stat().st_mtime_ns != t)
    assert not changed, f"outputs of finished jobs were rewritten: {changed}" + why(second)
    print(f"\ncancelled SLURM job {cancelled} ({victim['wildcards']}); rerun jobs: {sorted(r for r, _ in rerun)}; "
          f"{len(before)} finished output files untouched")


def cancel_first_running_train(proc: subprocess.Popen, log: Path, timeout: float = 2400) -> str:
    """Poll squeue until a train job (the plugin's --comment is rule_train_wildcards_...) RUNS; scancel it."""
    deadline, missed = time.time() + timeout, set()
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"snakemake exited ({proc.returncode}) before a train job ran" + why(log.read_text()))
        listing = run(["squeue", "-h", "-o", "%i %k %T"], check=False).stdout
        for job_id, comment, state in (line.split(maxsplit=2) for line in listing.splitlines()):
            if not comment.startswith("rule_train") or state != "RUNNING" or job_id in missed:
                continue
            if not any(j["finished"] for j in jobs(log.read_text()).values()):
                continue  # only once an earlier job has finished (it must have: train needs prepare_*)
            time.sleep(2)  # let it get going: a genuinely interrupted job, not a pending one
            run(["scancel", job_id], check=False)
            for _ in range(60):  # scancel returns at once; the job passes through COMPLETING
                if job_state(job_id) not in ("RUNNING", "COMPLETING"):
                    break
                time.sleep(1)
            if job_state(job_id) == "CANCELLED":
                return job_id
            missed.add(job_id)  # it finished first (a fast machine): wait for the other train job
        time.sleep(2)
    pytest.fail(f"no train job could be cancelled while RUNNING within {timeout:.0f}s" + why(log.read_text()))
