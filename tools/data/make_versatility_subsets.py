"""Build the small, committed evaluation subsets used by the versatility evaluator.

Reads a copy of the raw data (``--src``: the folder with the upstream files that the outputs' ``SOURCES.md``
names, with their commits and licences) and
writes deterministic subsets (seed 1234) into ``resources/data/versatility/`` plus a
``SOURCES.md`` with provenance and sha256 sums, and ``resources/nltk/english_text.txt``
(English text used to train NLTK's Punkt sentence splitter offline for IFEval).

The outputs are committed to the repository, so end users never need the shared data.

Usage::

    python tools/data/make_versatility_subsets.py --src RAW_DATA_FOLDER [--repo .]

Subset rules (all with ``random.Random(1234)``; one fresh RNG per data set, so changing
one subset never changes another):

* MMLU (test, 57 subjects): each subject's items are shuffled, then items are taken
  round-robin over subjects (alphabetical order) until 200 items. The output keeps that
  round-robin order, so the first N items (``limit=N``) cover N different subjects.
* ARC-Easy (dev, 570), ARC-Challenge (dev, 299), HellaSwag (validation, 10,042), PIQA (validation, 1,838),
  IFEval (541 prompts): ``rng.sample(range(n), k)``; output in sampled (random) order,
  so the first N items are themselves a uniform random sample.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
from pathlib import Path

SEED = 1234
N_MMLU = 200
N_ARC = 200
N_HELLASWAG = 200
N_PIQA = 200
N_IFEVAL = 60
PUNKT_TEXT_BYTES = 300_000

OUT_REL = Path("resources/data/versatility")
NLTK_TEXT_REL = Path("resources/nltk/english_text.txt")


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_mmlu(src: Path) -> list[dict]:
    """Round-robin over subjects of MMLU test, after a seeded shuffle within each subject."""
    rng = random.Random(SEED)
    per_subject: dict[str, list[dict]] = {}
    for csv_path in sorted((src / "mmlu" / "test").glob("*_test.csv")):
        subject = csv_path.name[: -len("_test.csv")]
        with csv_path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
        items = []
        for row in rows:
            if len(row) != 6 or row[5] not in "ABCD":
                raise ValueError(f"unexpected MMLU row in {csv_path}: {row!r}")
            items.append(
                {
                    "question": row[0],
                    "choices": row[1:5],
                    "answer": "ABCD".index(row[5]),
                    "subject": subject,
                }
            )
        rng.shuffle(items)
        per_subject[subject] = items
    if len(per_subject) != 57:
        raise ValueError(f"expected 57 MMLU subjects, found {len(per_subject)}")
    out: list[dict] = []
    depth = 0
    while len(out) < N_MMLU:
        for subject in sorted(per_subject):
            if depth < len(per_subject[subject]) and len(out) < N_MMLU:
                out.append(per_subject[subject][depth])
        depth += 1
    return out


def _make_arc(src: Path, file: str) -> list[dict]:
    """Seeded random sample of one ARC dev split; choices as texts, answer as an index."""
    rows = _read_jsonl(src / "arc" / file)
    rng = random.Random(SEED)
    out = []
    for i in rng.sample(range(len(rows)), N_ARC):
        row = rows[i]
        labels = [c["label"] for c in row["question"]["choices"]]
        out.append(
            {
                "id": row["id"],
                "question": row["question"]["stem"],
                "choices": [c["text"] for c in row["question"]["choices"]],
                "answer": labels.index(row["answerKey"]),
            }
        )
    return out


def make_arc_easy(src: Path) -> list[dict]:
    return _make_arc(src, "ARC-Easy-Dev.jsonl")


def make_arc_challenge(src: Path) -> list[dict]:
    return _make_arc(src, "ARC-Challenge-Dev.jsonl")


def make_hellaswag(src: Path) -> list[dict]:
    """Seeded random sample of HellaSwag validation (klosax 6-line text format)."""
    lines = (src / "hellaswag" / "hellaswag_val_full.txt").read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines = lines[:-1]
    if len(lines) % 6:
        raise ValueError(f"hellaswag file has {len(lines)} lines, not a multiple of 6")
    n = len(lines) // 6
    rng = random.Random(SEED)
    out = []
    for i in rng.sample(range(n), N_HELLASWAG):
        rec = lines[6 * i : 6 * i + 6]
        out.append({"ind": i, "ctx": rec[0], "endings": rec[2:6], "label": int(rec[1])})
    return out


def make_piqa(src: Path) -> list[dict]:
    """Seeded random sample of PIQA validation, labels joined from valid-labels.lst."""
    rows = _read_jsonl(src / "piqa" / "valid.jsonl")
    labels = (src / "piqa" / "valid-labels.lst").read_text(encoding="utf-8").split()
    if len(rows) != len(labels):
        raise ValueError(f"PIQA: {len(rows)} items but {len(labels)} labels")
    rng = random.Random(SEED)
    out = []
    for i in rng.sample(range(len(rows)), N_PIQA):
        row = rows[i]
        out.append({"ind": i, "goal": row["goal"], "sol1": row["sol1"], "sol2": row["sol2"], "label": int(labels[i])})
    return out


def make_ifeval(src: Path) -> list[dict]:
    """Seeded random sample of IFEval prompts, records kept verbatim (lm-eval's schema)."""
    rows = _read_jsonl(src / "ifeval" / "input_data.jsonl")
    rng = random.Random(SEED)
    out = []
    for i in rng.sample(range(len(rows)), N_IFEVAL):
        row = rows[i]
        out.append({k: row[k] for k in ("key", "prompt", "instruction_id_list", "kwargs")})
    return out


def make_punkt_text(src: Path) -> str:
    """Distinct SQuAD v1.1 dev paragraphs in file order, until >= PUNKT_TEXT_BYTES bytes."""
    seen: set[str] = set()
    parts: list[str] = []
    size = 0
    for row in _read_jsonl(src / "squad" / "dev.jsonl"):
        ctx = row["context"].strip()
        if ctx in seen:
            continue
        seen.add(ctx)
        parts.append(ctx)
        size += len(ctx.encode("utf-8")) + 2
        if size >= PUNKT_TEXT_BYTES:
            break
    return "\n\n".join(parts) + "\n"


SOURCES_HEADER = """\
# Versatility evaluation subsets

Generated by `tools/data/make_versatility_subsets.py` (seed {seed}) from copies of
public GitHub repositories (retrieved 2026-11-25; the exact commits are below). Do not edit
by hand: re-run the script and commit its outputs. Each subset is small on purpose (CPU
evaluation); scores on it are estimates of the full-benchmark scores, with stderr reported.

Ordering: MMLU is round-robin over subjects (first N items = N different subjects); all
other files are in seeded random order, so `limit=N` (first N items) is a random sample.

| file | items | source repo | commit | path in repo | licence (as stated) | subset rule | fields | sha256 |
|---|---|---|---|---|---|---|---|---|
"""

SOURCES_ROWS = {
    "mmlu.jsonl": (
        "raybears/cot-transparency",
        "f6874394ba80a439237e4d7581dddc30d40c1830",
        "`data/mmlu/test/*_test.csv` (57 subjects, 14,042 items)",
        "repo `LICENSE` = MIT; upstream MMLU (hendrycks/test) is MIT",
        "per-subject seeded shuffle, then round-robin over subjects (alphabetical) until 200",
        "`question`, `choices` (4 str), `answer` (0-3), `subject`",
    ),
    "arc_easy.jsonl": (
        "raybears/cot-transparency",
        "f6874394ba80a439237e4d7581dddc30d40c1830",
        "`data/arc_easy/ARC-Easy-Dev.jsonl` (570 items)",
        "repo `LICENSE` = MIT (Miles Turpin); upstream ARC (AI2) is CC BY-SA 4.0",
        "`random.Random(1234).sample(range(570), 200)`",
        "`id`, `question`, `choices` (3-5 str), `answer` (index of `answerKey`)",
    ),
    "arc_challenge.jsonl": (
        "raybears/cot-transparency",
        "f6874394ba80a439237e4d7581dddc30d40c1830",
        "`data/arc_challenge/ARC-Challenge-Dev.jsonl` (299 items)",
        "repo `LICENSE` = MIT (Miles Turpin); upstream ARC (AI2) is CC BY-SA 4.0",
        "`random.Random(1234).sample(range(299), 200)`",
        "`id`, `question`, `choices` (3-5 str), `answer` (index of `answerKey`)",
    ),
    "hellaswag.jsonl": (
        "klosax/hellaswag_text_data",
        "1105d370f8340eac3c63a91fd1fa58e8999f9505",
        "`hellaswag_val_full.txt.bz2` (decompressed; 10,042 items, 6 lines each)",
        "MIT (`LICENSE` at commit 5eba56b, deleted at HEAD); upstream rowanz/hellaswag MIT",
        "`random.Random(1234).sample(range(10042), 200)`; text already preprocessed by klosax (tags removed; unlike lm-eval's `hellaswag`, `ctx_b` is not re-capitalised because ctx is stored as one string)",
        "`ind` (item index in file), `ctx` (`activity_label: ctx`), `endings` (4 str), `label` (0-3)",
    ),
    "piqa.jsonl": (
        "ybisk/ybisk.github.io",
        "21edab439af693b961be2f069e8690a88d3b4e37",
        "`piqa/data/valid.jsonl` + `piqa/data/valid-labels.lst` (1,838 items)",
        "Academic Free License v3.0 (stated in `piqa/data/README.md`)",
        "`random.Random(1234).sample(range(1838), 200)`",
        "`ind` (line index), `goal`, `sol1`, `sol2`, `label` (0 = sol1, 1 = sol2)",
    ),
    "ifeval.jsonl": (
        "josejg/instruction_following_eval",
        "0c495b2f95155e8b10acb919ae283bfb4d5be6e2",
        "`instruction_following_eval/data/input_data.jsonl` (541 prompts; same as google-research)",
        "Apache-2.0",
        "`random.Random(1234).sample(range(541), 60)`; records verbatim",
        "`key`, `prompt`, `instruction_id_list`, `kwargs` (lm-eval `ifeval` schema)",
    ),
}

PUNKT_ROW = (
    "rajpurkar SQuAD v1.1 dev via pulakdas1999/QnA_using_BERT",
    "48925669ea5ebb270348b817d7463b809a381bb9",
    "`dev-v1.1.json.zip` -> flattened `dev.jsonl`, field `context`",
    "CC BY-SA 4.0 (official SQuAD site)",
    "distinct paragraphs in file order until >= 300,000 bytes, joined by blank lines",
    "plain text (training text for NLTK Punkt; not an evaluation set)",
)


def _sources_md(out_dir: Path, nltk_text: Path, counts: dict[str, int], repo: Path) -> str:
    lines = [SOURCES_HEADER.format(seed=SEED)]
    for name, (src_repo, commit, path, licence, rule, fields) in SOURCES_ROWS.items():
        lines.append(
            f"| `{name}` | {counts[name]} | {src_repo} | {commit} | {path} | {licence} | {rule} | {fields} "
            f"| `{_sha256(out_dir / name)}` |\n"
        )
    n_par = nltk_text.read_text(encoding="utf-8").count("\n\n") + 1
    src_repo, commit, path, licence, rule, fields = PUNKT_ROW
    lines.append(
        f"| `{nltk_text.relative_to(repo).as_posix()}` | {n_par} paragraphs | {src_repo} | {commit} | {path} "
        f"| {licence} | {rule} | {fields} | `{_sha256(nltk_text)}` |\n"
    )
    lines.append(
        "\nIFEval needs NLTK's `punkt_tab` sentence splitter, which NLTK normally downloads. This project\n"
        "never downloads it: `evaluators/versatility.py` trains a Punkt model "
        "(`nltk.tokenize.punkt.PunktTrainer`)\non the text file above and saves it under the run's `NLTK_DATA` "
        "folder. IFEval sentence counts\ntherefore come from a locally trained Punkt model, not the official "
        "NLTK English model.\n"
    )
    return "".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, required=True, help="folder of the raw upstream files (see SOURCES.md)")
    parser.add_argument(
        "--repo", type=Path, default=Path(__file__).resolve().parents[2], help="repository root (outputs go here)"
    )
    args = parser.parse_args(argv)
    src, repo = args.src, args.repo.resolve()
    out_dir = repo / OUT_REL

    builders = {
        "mmlu.jsonl": make_mmlu,
        "arc_easy.jsonl": make_arc_easy,
        "arc_challenge.jsonl": make_arc_challenge,
        "hellaswag.jsonl": make_hellaswag,
        "piqa.jsonl": make_piqa,
        "ifeval.jsonl": make_ifeval,
    }
    counts = {}
    for name, build in builders.items():
        rows = build(src)
        _write_jsonl(out_dir / name, rows)
        counts[name] = len(rows)
        print(f"wrote {out_dir / name} ({len(rows)} items)")

    nltk_text = repo / NLTK_TEXT_REL
    nltk_text.parent.mkdir(parents=True, exist_ok=True)
    nltk_text.write_text(make_punkt_text(src), encoding="utf-8", newline="\n")
    print(f"wrote {nltk_text} ({nltk_text.stat().st_size} bytes)")

    (out_dir / "SOURCES.md").write_text(_sources_md(out_dir, nltk_text, counts, repo), encoding="utf-8")
    print(f"wrote {out_dir / 'SOURCES.md'}")


if __name__ == "__main__":
    main()
