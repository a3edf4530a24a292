"""`tools/bench.py` (the bench_verdict target) end to end on the tiny suite against its committed baselines: a throwaway plugin method
gets a per-metric verdict; a deliberately broken one fails the gate with a readable reason; the gates are
calibrated (the reference under another seed passes, the reference at 10x its lr fails)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

SANE = '''
from dataclasses import dataclass

from cofitune.core.methods import Method, register


@register("ffn_region")
@dataclass(frozen=True)
class FfnRegion(Method):
    """Throwaway: train up/down projections of layers 2-3, no mask."""

    def trainable(self, model):
        return {n for n, _ in model.named_parameters()
                if n.split(".")[2:3] in (["2"], ["3"]) and n.split(".")[-2] in ("up_proj", "down_proj")}
'''

BROKEN = '''
from dataclasses import dataclass

from cofitune.core.methods import Method, register


@register("head_blaster")
@dataclass(frozen=True)
class HeadBlaster(Method):
    """Deliberately broken: trains the (tied) LM head / embeddings; run with a huge lr."""

    def trainable(self, model):
        return {"model.embed_tokens.weight"}
'''


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """One bench workdir for the module, as a method author reuses one: the suite's model, data, importance
    and probe are prepared by the first run and reused by the next; each method's row and verdict are its own
    (the launcher removes the previous verdict before it starts)."""
    return tmp_path_factory.mktemp("bench") / "work"


def bench(tmp_path: Path, work: Path, name: str, source: str, *extra: str,
          method: str | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``tools/bench.py`` on the tiny suite in ``work``: a plugin method ``name`` from ``source``, or
    (``method``) a registered one."""
    plugin_args = []
    if source:
        plugin = tmp_path / f"{name}.py"
        plugin.write_text(source)
        plugin_args = ["--plugin", str(plugin)]
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.run([sys.executable, str(ROOT / "tools/bench.py"), "--suite", "tiny", "--method", method or name,
                           "--variant", name, *plugin_args, "--workdir", str(work), *extra],
                          capture_output=True, text=True, env=env, timeout=1200)
    verdict = work / "results/bench/verdict.json"
    assert verdict.is_file(), proc.stderr[-3000:]
    return proc, json.loads(verdict.read_text())


def test_a_plugin_method_gets_a_verdict_per_metric(tmp_path, workdir):
    """An unmasked FFN region (coarse-only, as a plugin) keeps Spec and Vers but moves the model further from
    the original than the soft-masked reference: the drift gate says so, the others pass."""
    proc, verdict = bench(tmp_path, workdir, "ffn_region", SANE)
    entries = {e["metric"]: e for e in verdict["blocks"][0]["metrics"]}
    assert list(entries) == ["spec", "spec_nll", "vers", "vers_m", "drift"]
    assert all(isinstance(e["passed"], bool) and e["reason"] and e["verdict"] for e in entries.values())
    assert verdict["reference"] == "cofitune/ffn-bottom2-update"
    assert [m for m, e in entries.items() if not e["passed"]] == ["drift"], proc.stdout
    assert entries["drift"]["diff"] > entries["drift"]["max_drop"] and entries["drift"]["verdict"] == "worse"
    assert proc.returncode == 1 and "FAIL: drift" in proc.stdout
    assert (workdir / "results/bench/verdict.md").read_text().startswith("# bench verdict: ffn_region/ffn_region")


def test_a_broken_method_fails_the_gate_with_a_reason(tmp_path, workdir):
    proc, verdict = bench(tmp_path, workdir, "head_blaster", BROKEN, "--train", '{"lr": 5.0}')
    assert proc.returncode == 1 and not verdict["passed"]
    nll = next(e for e in verdict["blocks"][0]["metrics"] if e["metric"] == "spec_nll")
    assert not nll["passed"] and nll["diff"] > 0.5
    assert "significant regression" in nll["reason"] or "not finite" in nll["reason"]
    assert "FAIL: spec_nll" in proc.stdout


REFERENCE = ["--params", '{"layers": "bottom2", "modules": "ffn", "target": "update"}']  # the suite's reference


def test_calibration_null_method_passes(tmp_path, workdir):
    """The reference method re-run with another training seed is noise, not a regression: it must pass."""
    proc, verdict = bench(tmp_path, workdir, "null", "", *REFERENCE, "--seed", "7", method="cofitune")
    assert verdict["passed"], proc.stdout
    assert all(e["verdict"] in ("better", "worse", "undecided") and e["detectable"] >= e["max_drop"]
               for e in verdict["blocks"][0]["metrics"])


def test_calibration_known_harm_is_detected(tmp_path, workdir):
    """The reference method at 10x its learning rate is a known harm: the gate must fail it."""
    proc, verdict = bench(tmp_path, workdir, "harm", "", *REFERENCE, "--train", '{"lr": 0.2}', method="cofitune")
    assert proc.returncode == 1 and not verdict["passed"], proc.stdout
    failed = {e["metric"] for e in verdict["blocks"][0]["metrics"] if not e["passed"]}
    assert "drift" in failed, failed  # on the random tiny model only drift sees this harm (see tiny.yaml)
