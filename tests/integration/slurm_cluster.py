"""A real single-node SLURM cluster for the integration tests (Debian `slurm-wlm` + `munge`, run as root).

`SlurmCluster.up()` installs the packages when `slurmctld` is missing, creates the munge key, writes a
minimal `/etc/slurm/slurm.conf` (only where there is none, or where it is ours: it carries `MARKER`), starts
whichever of munged / slurmctld / slurmd is not already running and waits for the node to be idle.
`down()` undoes exactly that: it kills only the daemons it started (by the pid `Popen` gave it) and removes
the conf only if it wrote it. A real cluster found on the machine is used as is and left alone.

The conf lives at the default path on purpose (docs/ecosystem.md): the job-step plugin strips SLURM_* from
the nested `srun`, so a `SLURM_CONF` pointing elsewhere is lost inside jobs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# cofitune-test-cluster: written by tests/integration/slurm_cluster.py (safe to delete)"
MUNGE_KEY = Path("/etc/munge/munge.key")
STATE = Path("/var/lib/slurm/cofitune-test")
LOGS = Path("/var/log/slurm")
PACKAGES = ("slurm-wlm", "munge")
USABLE = ("idle", "mix", "alloc", "comp")  # node states in which jobs start (sinfo %t)


class ClusterError(RuntimeError):
    """The cluster could not be set up; the message says why (and carries the daemons' logs)."""


def run(cmd: list[str], timeout: float = 60, check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise ClusterError(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                           f"{proc.stderr[-3000:]}")
    return proc


def running(name: str) -> bool:
    return subprocess.run(["pgrep", "-x", name], capture_output=True).returncode == 0


def tail(path: Path, n: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError as e:
        return f"<{e}>"


def real_memory_mb() -> int:
    """A RealMemory slurmd will accept: below both the physical memory and what is free right now."""
    info = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, value = line.split(":", 1)
        info[key] = int(value.split()[0]) // 1024  # kB -> MB
    return max(512, min(int(info["MemAvailable"] * 0.6), int(info["MemTotal"] * 0.9)))


def render_conf(cpus: int, memory_mb: int) -> str:
    return f"""{MARKER}
# Minimal single-node cluster (docs/ecosystem.md "SLURM, for real, on one machine").
ClusterName=cofitune-test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
# finished jobs stay visible to `scontrol show job` / `squeue --states=all` (the profile's status command)
MinJobAge=3600
StateSaveLocation={STATE}/ctld
SlurmdSpoolDir={STATE}/d
SlurmctldPidFile={STATE}/slurmctld.pid
SlurmdPidFile={STATE}/slurmd.pid
SlurmctldLogFile={LOGS}/cofitune-test-slurmctld.log
SlurmdLogFile={LOGS}/cofitune-test-slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=localhost CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def job_state(job_id: str) -> str | None:
    """JobState from `scontrol show job` (finished jobs stay listed for MinJobAge seconds), None if unknown."""
    out = run(["scontrol", "show", "job", job_id], check=False).stdout
    for token in out.split():
        if token.startswith("JobState="):
            return token.split("=", 1)[1]
    return None


def conf_value(key: str) -> str | None:
    """`Key=value` from the conf in use (for its log paths)."""
    try:
        for line in CONF.read_text().splitlines():
            k, _, v = line.strip().partition("=")
            if k.lower() == key.lower():
                return v.split()[0] if v.split() else None
    except OSError:
        pass
    return None


@dataclass
class SlurmCluster:
    started: dict[str, subprocess.Popen] = field(default_factory=dict)  # daemon -> process WE started
    wrote_conf: bool = False
    installed: bool = False
    log_dir: Path = LOGS

    # ----------------------------------------------------------------------------------------------- setup
    def up(self, timeout: float = 120) -> "SlurmCluster":
        if os.geteuid() != 0:
            raise ClusterError("the SLURM integration test needs root (it installs slurm-wlm/munge with apt-get "
                               "and starts slurmctld/slurmd); run it as root, e.g. in CI or a container")
        try:
            self.install()
            self.start_munge()
            self.write_conf()
            self.start_slurm()
            self.wait_usable(timeout)
        except BaseException:
            self.down()
            raise
        return self

    def install(self) -> None:
        if shutil.which("slurmctld") and shutil.which("slurmd") and shutil.which("munged"):
            return
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        if not shutil.which("apt-get"):
            raise ClusterError("slurmctld is missing and there is no apt-get to install slurm-wlm/munge: "
                               "install SLURM (slurmctld, slurmd, munge) by hand")
        run(["apt-get", "update"], timeout=600, env=env)
        run(["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES], timeout=1200, env=env)
        if not shutil.which("slurmctld"):
            raise ClusterError(f"apt-get installed {PACKAGES} but slurmctld is still not on PATH")
        self.installed = True

    def start_munge(self) -> None:
        if not MUNGE_KEY.exists():
            MUNGE_KEY.parent.mkdir(parents=True, exist_ok=True)
            tool = shutil.which("mungekey") or "/usr/sbin/mungekey"
            run([tool, "--create", "--keyfile", str(MUNGE_KEY)])
            os.chmod(MUNGE_KEY, 0o600)
        if running("munged"):
            return
        for d in ("/run/munge", "/var/log/munge", "/var/lib/munge"):
            Path(d).mkdir(parents=True, exist_ok=True)
        # foreground (-F) under Popen: the pid is exactly ours; --force: run as root, ignore a stale socket
        self._spawn("munged", [shutil.which("munged") or "/usr/sbin/munged", "-F", "--force"])
        deadline = time.time() + 20
        while run(["munge", "-n"], check=False).returncode != 0:
            if time.time() > deadline or self.started["munged"].poll() is not None:
                raise ClusterError("munged did not come up:\n" + self.logs())
            time.sleep(0.5)

    def write_conf(self) -> None:
        if CONF.exists() and MARKER not in CONF.read_text():
            if running("slurmctld"):
                return  # a real cluster is up and configured: use it, touch nothing
            raise ClusterError(f"{CONF} exists and was not written by this test (no marker line); refusing to "
                               "overwrite a real cluster's config. Start that cluster, or move the file away.")
        if not CONF.exists() and running("slurmctld"):
            raise ClusterError(f"slurmctld is running but {CONF} does not exist: jobs would not find the config "
                               "(the job-step plugin drops SLURM_CONF). Stop that slurmctld or install its conf "
                               "at the default path.")
        if CONF.exists() and running("slurmctld"):
            return  # our conf, daemons from an earlier session still up: reuse them as they are
        for d in (STATE / "ctld", STATE / "d", LOGS):
            d.mkdir(parents=True, exist_ok=True)
        CONF.parent.mkdir(parents=True, exist_ok=True)
        CONF.write_text(render_conf(os.cpu_count() or 1, real_memory_mb()))
        self.wrote_conf = True

    def start_slurm(self) -> None:
        # -D: stay in the foreground, so the Popen pid is the daemon's; stderr goes to our own log file
        if not running("slurmctld"):
            self._spawn("slurmctld", ["slurmctld", "-D", "-c", "-i", "-f", str(CONF)])
            deadline = time.time() + 30
            while run(["scontrol", "ping"], check=False).stdout.find("UP") < 0:
                if time.time() > deadline or self.started["slurmctld"].poll() is not None:
                    raise ClusterError("slurmctld did not answer `scontrol ping`:\n" + self.logs())
                time.sleep(0.5)
        if not running("slurmd"):
            self._spawn("slurmd", ["slurmd", "-D", "-f", str(CONF), "-N", "localhost"])

    def wait_usable(self, timeout: float) -> None:
        deadline, resumed = time.time() + timeout, False
        while True:
            states = run(["sinfo", "-h", "-o", "%t"], check=False).stdout.split()
            if any(s in USABLE for s in states):
                return
            for name, proc in self.started.items():
                if proc.poll() is not None:
                    raise ClusterError(f"{name} exited with {proc.returncode}:\n" + self.logs())
            if self.started and not resumed and any(s.startswith(("down", "drain", "drng")) for s in states):
                # our node, ours to resume (e.g. left DOWN by an earlier run's state)
                run(["scontrol", "update", "nodename=localhost", "state=resume"], check=False)
                resumed = True
            if time.time() > deadline:
                node = run(["scontrol", "show", "node"], check=False).stdout
                raise ClusterError(f"node not idle after {timeout:.0f}s (sinfo states {states}):\n{node}\n"
                                   + self.logs())
            time.sleep(1)

    def _spawn(self, name: str, cmd: list[str]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / f"cofitune-test-{name}.stderr", "w")
        self.started[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                              start_new_session=True)  # a Ctrl-C in pytest does not reach it
        out.close()

    # -------------------------------------------------------------------------------------------- teardown
    def down(self) -> None:
        if "slurmctld" in self.started:  # our controller: every job in it is a test job
            run(["scancel", "--full", "--user", "root"], check=False)
            deadline = time.time() + 30
            while run(["squeue", "-h", "-o", "%i"], check=False).stdout.strip() and time.time() < deadline:
                time.sleep(1)
        for name in ("slurmd", "slurmctld", "munged"):  # the reverse of the start order
            proc = self.started.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if self.wrote_conf:
            CONF.unlink(missing_ok=True)
            self.wrote_conf = False

    # ---------------------------------------------------------------------------------------- diagnostics
    def logs(self, n: int = 60) -> str:
        """The tails of the daemons' logs (for assertion messages)."""
        paths = [Path(p) for p in (conf_value("SlurmctldLogFile"), conf_value("SlurmdLogFile")) if p]
        paths += sorted(self.log_dir.glob("cofitune-test-*.stderr"))
        return "\n".join(f"----- {p} (last {n} lines)\n{tail(p, n)}" for p in paths)
