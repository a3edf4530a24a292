#!/usr/bin/env python3
"""HF ``generate`` vs vLLM greedy generation on the first N items of a prepared test set (a GPU, or vLLM's CPU
build): the exact-match rate of the two texts and the difference of the speciality metric.

    python tools/parity.py --model-dir results/models/smollm2-135m/base --test results/data/squad/test.jsonl \\
        --n 100 --out parity.json

The comparison is :func:`cofitune.pipeline.vllm_backend.parity`; this script only drives the two engines.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cofitune.pipeline.schema import schema_default  # noqa: E402

log = logging.getLogger("cofitune.parity")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tools/parity.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", required=True)
    p.add_argument("--checkpoint", default=None, help="a run's checkpoint folder (default: the base model)")
    p.add_argument("--test", required=True, help="prepared test.jsonl")
    p.add_argument("--evaluator", default="squad", help="speciality scorer (evaluators/speciality/)")
    p.add_argument("--template", default=schema_default("train", "template"))
    p.add_argument("--n", type=int, default=100, help="the first N test items")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--repetition-penalty", type=float,
                   default=schema_default("evaluation", "speciality", "repetition_penalty"))
    p.add_argument("--dtype", default="float32", help="vLLM dtype (float32 matches HF's CPU-exact weights)")
    p.add_argument("--out", required=True, help="parity JSON")
    return p


def parity(a) -> dict:
    from cofitune.core.distributed import device
    from cofitune.core.prompt import build_prompt
    from cofitune.pipeline import vllm_backend
    from cofitune.pipeline.data import read_examples
    from cofitune.pipeline.evaluate import generate
    from cofitune.pipeline.io import write_json
    from cofitune.pipeline.model import load_for_eval
    from evaluators.speciality import get_scorer

    vllm_backend.require_vllm("tools/parity.py")
    examples = read_examples(a.test)[: a.n]
    scorer = get_scorer(a.evaluator)
    model, tok = load_for_eval(a.model_dir, a.checkpoint)
    model = model.to(device())  # the GPU, or the host for vLLM's CPU build
    prompts = [build_prompt(e, a.template, tok) for e in examples]
    hf_texts, _ = generate(model, tok, prompts, max_new_tokens=a.max_new_tokens,
                           repetition_penalty=a.repetition_penalty)
    with vllm_backend.exported(model, tok) as folder:
        vllm_texts, _, _ = vllm_backend.generate(vllm_backend.make_llm(folder, dtype=a.dtype), prompts,
                                                 max_new_tokens=a.max_new_tokens,
                                                 repetition_penalty=a.repetition_penalty)

    def scores(texts):
        return [scorer.score(scorer.extract(t), e.get("references") or [e["output"]])[scorer.PRIMARY]
                for t, e in zip(texts, examples)]

    report = vllm_backend.parity(hf_texts, vllm_texts, scores(hf_texts), scores(vllm_texts))
    report = {**report, "metric": scorer.PRIMARY, "model_dir": str(a.model_dir),
              "checkpoint": a.checkpoint and str(a.checkpoint), "max_new_tokens": a.max_new_tokens,
              "repetition_penalty": a.repetition_penalty}
    write_json(a.out, report)
    return report


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from cofitune.pipeline.launch import go_offline

    go_offline()
    try:
        report = parity(a)
    except (ValueError, FileNotFoundError) as err:
        log.error("parity failed: %s", err)
        return 2
    log.info("HF vs vLLM on %d items: exact match %.1f%%, %s diff %+.3f -> %s", report["n"],
             100 * report["exact_match_rate"], report["metric"], report["metric_diff"], a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
