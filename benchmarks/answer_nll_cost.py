"""Cost of the teacher-forced answer NLL (a speciality signal in every `metrics.json`): cofitune's
implementation, which projects only the answer-predicting positions through the LM head, next to the
reference that computes logits and a softmax at every position, side by side in one run on the same
items. Also records the largest per-item difference between the two (float noise, not a change of metric).

    python benchmarks/answer_nll_cost.py --out benchmarks/answer_nll_cost.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from cofitune.core.prompt import build_prompt
from cofitune.pipeline.data import read_examples
from cofitune.pipeline.evaluate import answer_nll
from cofitune.pipeline.model import load_base


@torch.no_grad()
def reference_nll(model, tok, examples, *, template: str, batch_size: int) -> list[float]:
    """Logits at every position, input order, one cross-entropy over the padded batch."""
    out = []
    for start in range(0, len(examples), batch_size):
        rows = []
        for ex in examples[start:start + batch_size]:
            p = tok(build_prompt(ex, template, tok), add_special_tokens=False)["input_ids"]
            o = tok(ex["output"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            rows.append((p + o, len(p)))
        width = max(len(r) for r, _ in rows)
        ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
        mask, labels = torch.zeros_like(ids), torch.full_like(ids, -100)
        for i, (r, n) in enumerate(rows):
            ids[i, :len(r)], mask[i, :len(r)], labels[i, n:len(r)] = torch.tensor(r), 1, torch.tensor(r[n:])
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
        loss = F.cross_entropy(logits[:, :-1].transpose(1, 2), labels[:, 1:], reduction="none")
        out += (loss.sum(dim=1) / (labels[:, 1:] != -100).sum(dim=1)).tolist()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default="results/models/smollm2-135m/base")
    p.add_argument("--test", default="results/data/squad/test.jsonl")
    p.add_argument("--n-examples", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--template", default="alpaca", help="prompt template, as in config/config.yaml")
    p.add_argument("--out", default="benchmarks/answer_nll_cost.json")
    a = p.parse_args()
    model, tok = load_base(a.model_dir)
    model.eval()
    examples = read_examples(a.test)[: a.n_examples]
    kw = {"template": a.template, "batch_size": a.batch_size}

    t0 = time.perf_counter()
    ref = reference_nll(model, tok, examples, **kw)
    ref_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = answer_nll(model, tok, examples, progress=False, **kw)
    got_s = time.perf_counter() - t0
    diff = max(abs(x - y) for x, y in zip(ref, got))
    result = {"device": "cpu", "threads": torch.get_num_threads(), "n_examples": len(examples),
              "batch_size": a.batch_size, "reference_s": ref_s, "cofitune_s": got_s,
              "speedup": ref_s / got_s, "max_abs_item_diff_nats": diff,
              "mean_nll_reference": sum(ref) / len(ref), "mean_nll_cofitune": sum(got) / len(got)}
    from cofitune.pipeline.provenance import collect

    result["meta"] = collect()
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "meta"}, indent=2))


if __name__ == "__main__":
    main()
