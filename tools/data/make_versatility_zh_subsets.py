"""Build the Chinese versatility subsets (CMMLU, C-Eval, LogiQA-zh, XCOPA-zh) for config/paper.yaml.

Reads a copy of the raw data (``--src``: the folder with the upstream files that the outputs' ``SOURCES.md``
names, with their commits and licences) and writes, per
benchmark, a 200-item deterministic subset (seed 1234) and the complete split in the same order
(``<name>_full.jsonl``) into ``resources/data/versatility_zh/`` as JSONL,
plus ``SOURCES.md`` with provenance and sha256 sums. Standard library only. The outputs are
committed, so users never need the shared data.

Usage::

    python tools/data/make_versatility_zh_subsets.py --src RAW_DATA_FOLDER [--repo .]

Subset rules (one fresh ``random.Random(1234)`` per data set):

* CMMLU (test, 67 subjects) and C-Eval (val, 52 subjects): each subject's items are shuffled,
  then taken round-robin over subjects (alphabetical) until 200; output in that order, so the
  first N items (``limit=N``) cover N different subjects (for N <= number of subjects).
* LogiQA-zh (test, 651) and XCOPA-zh (test, 500): ``rng.sample(range(n), 200)``; output in
  sampled order.

Chinese subject names (for the per-subject ``description`` of lm-eval's cmmlu / ceval tasks) are
copied from lm-eval 0.4.13 ``lm_eval/tasks/{cmmlu,ceval}/_generate_configs.py`` (MIT).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import re
from pathlib import Path

SEED = 1234
N_ITEMS = 200
OUT_REL = Path("resources/data/versatility_zh")

CMMLU_SUBJECTS: dict[str, str] = {
    "agronomy": "农学",
    "anatomy": "解剖学",
    "ancient_chinese": "古汉语",
    "arts": "艺术学",
    "astronomy": "天文学",
    "business_ethics": "商业伦理",
    "chinese_civil_service_exam": "中国公务员考试",
    "chinese_driving_rule": "中国驾驶规则",
    "chinese_food_culture": "中国饮食文化",
    "chinese_foreign_policy": "中国外交政策",
    "chinese_history": "中国历史",
    "chinese_literature": "中国文学",
    "chinese_teacher_qualification": "中国教师资格",
    "clinical_knowledge": "临床知识",
    "college_actuarial_science": "大学精算学",
    "college_education": "大学教育学",
    "college_engineering_hydrology": "大学工程水文学",
    "college_law": "大学法律",
    "college_mathematics": "大学数学",
    "college_medical_statistics": "大学医学统计",
    "college_medicine": "大学医学",
    "computer_science": "计算机科学",
    "computer_security": "计算机安全",
    "conceptual_physics": "概念物理学",
    "construction_project_management": "建设工程管理",
    "economics": "经济学",
    "education": "教育学",
    "electrical_engineering": "电气工程",
    "elementary_chinese": "小学语文",
    "elementary_commonsense": "小学常识",
    "elementary_information_and_technology": "小学信息技术",
    "elementary_mathematics": "初等数学",
    "ethnology": "民族学",
    "food_science": "食品科学",
    "genetics": "遗传学",
    "global_facts": "全球事实",
    "high_school_biology": "高中生物",
    "high_school_chemistry": "高中化学",
    "high_school_geography": "高中地理",
    "high_school_mathematics": "高中数学",
    "high_school_physics": "高中物理学",
    "high_school_politics": "高中政治",
    "human_sexuality": "人类性行为",
    "international_law": "国际法学",
    "journalism": "新闻学",
    "jurisprudence": "法理学",
    "legal_and_moral_basis": "法律与道德基础",
    "logical": "逻辑学",
    "machine_learning": "机器学习",
    "management": "管理学",
    "marketing": "市场营销",
    "marxist_theory": "马克思主义理论",
    "modern_chinese": "现代汉语",
    "nutrition": "营养学",
    "philosophy": "哲学",
    "professional_accounting": "专业会计",
    "professional_law": "专业法学",
    "professional_medicine": "专业医学",
    "professional_psychology": "专业心理学",
    "public_relations": "公共关系",
    "security_study": "安全研究",
    "sociology": "社会学",
    "sports_science": "体育学",
    "traditional_chinese_medicine": "中医中药",
    "virology": "病毒学",
    "world_history": "世界历史",
    "world_religions": "世界宗教",
}

CEVAL_SUBJECTS: dict[str, str] = {
    "computer_network": "计算机网络",
    "operating_system": "操作系统",
    "computer_architecture": "计算机组成",
    "college_programming": "大学编程",
    "college_physics": "大学物理",
    "college_chemistry": "大学化学",
    "advanced_mathematics": "高等数学",
    "probability_and_statistics": "概率统计",
    "discrete_mathematics": "离散数学",
    "electrical_engineer": "注册电气工程师",
    "metrology_engineer": "注册计量师",
    "high_school_mathematics": "高中数学",
    "high_school_physics": "高中物理",
    "high_school_chemistry": "高中化学",
    "high_school_biology": "高中生物",
    "middle_school_mathematics": "初中数学",
    "middle_school_biology": "初中生物",
    "middle_school_physics": "初中物理",
    "middle_school_chemistry": "初中化学",
    "veterinary_medicine": "兽医学",
    "college_economics": "大学经济学",
    "business_administration": "工商管理",
    "marxism": "马克思主义基本原理",
    "mao_zedong_thought": "毛泽东思想和中国特色社会主义理论体系概论",
    "education_science": "教育学",
    "teacher_qualification": "教师资格",
    "high_school_politics": "高中政治",
    "high_school_geography": "高中地理",
    "middle_school_politics": "初中政治",
    "middle_school_geography": "初中地理",
    "modern_chinese_history": "近代史纲要",
    "ideological_and_moral_cultivation": "思想道德修养与法律基础",
    "logic": "逻辑学",
    "law": "法学",
    "chinese_language_and_literature": "中国语言文学",
    "art_studies": "艺术学",
    "professional_tour_guide": "导游资格",
    "legal_professional": "法律职业资格",
    "high_school_chinese": "高中语文",
    "high_school_history": "高中历史",
    "middle_school_history": "初中历史",
    "civil_servant": "公务员",
    "sports_science": "体育学",
    "plant_protection": "植物保护",
    "basic_medicine": "基础医学",
    "clinical_medicine": "临床医学",
    "urban_and_rural_planner": "注册城乡规划师",
    "accountant": "注册会计师",
    "fire_engineer": "注册消防工程师",
    "environmental_impact_assessment_engineer": "环境影响评价工程师",
    "tax_accountant": "税务师",
    "physician": "医师资格",
}


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _round_robin(per_subject: dict[str, list[dict]], n: int | None) -> list[dict]:
    """Items round-robin over subjects (alphabetical), ``n`` of them (None: all), so every prefix of the
    full order is the subset of that size."""
    total = sum(len(items) for items in per_subject.values())
    n = total if n is None else n
    out: list[dict] = []
    depth = 0
    while len(out) < n:
        added = False
        for subject in sorted(per_subject):
            if depth < len(per_subject[subject]) and len(out) < n:
                out.append(per_subject[subject][depth])
                added = True
        if not added:
            raise ValueError(f"only {len(out)} items available, need {n}")
        depth += 1
    return out


def _read_csv(path: Path, header: list[str]) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    if rows[0][: len(header)] != header:
        raise ValueError(f"{path}: unexpected header {rows[0]!r}")
    out = []
    for lineno, row in enumerate(rows[1:], start=2):
        rec = dict(zip(rows[0], row))
        if len(row) != len(rows[0]) or rec[header[-1]] not in ("A", "B", "C", "D"):
            raise ValueError(f"{path}:{lineno}: unexpected row {row!r}")
        out.append(rec)
    return out


def make_cmmlu(src: Path, n: int | None) -> list[dict]:
    """CMMLU test: lm-eval field names (Question, A-D, Answer letter) plus subject / subject_zh."""
    rng = random.Random(SEED)
    per_subject: dict[str, list[dict]] = {}
    for path in sorted((src / "cmmlu" / "test").glob("*.csv")):
        subject = path.stem
        items = [
            {"Question": r["Question"], "A": r["A"], "B": r["B"], "C": r["C"], "D": r["D"],
             "Answer": r["Answer"], "subject": subject, "subject_zh": CMMLU_SUBJECTS[subject]}
            for r in _read_csv(path, ["", "Question", "A", "B", "C", "D", "Answer"])
        ]
        rng.shuffle(items)
        per_subject[subject] = items
    if len(per_subject) != 67:
        raise ValueError(f"expected 67 CMMLU subjects, found {len(per_subject)}")
    return _round_robin(per_subject, n)


def make_ceval(src: Path, n: int | None) -> list[dict]:
    """C-Eval val: lm-eval field names (id, question, A-D, answer letter) plus subject / subject_zh."""
    rng = random.Random(SEED)
    per_subject: dict[str, list[dict]] = {}
    for path in sorted((src / "ceval" / "val").glob("*_val.csv")):
        subject = path.name[: -len("_val.csv")]
        items = [
            {"id": int(r["id"]), "question": r["question"], "A": r["A"], "B": r["B"], "C": r["C"], "D": r["D"],
             "answer": r["answer"], "subject": subject, "subject_zh": CEVAL_SUBJECTS[subject]}
            for r in _read_csv(path, ["id", "question", "A", "B", "C", "D", "answer"])
        ]
        rng.shuffle(items)
        per_subject[subject] = items
    if len(per_subject) != 52:
        raise ValueError(f"expected 52 C-Eval subjects, found {len(per_subject)}")
    return _round_robin(per_subject, n)


_OPTION = re.compile(r"([A-D])\s*[.．、:：]?\s*")  # "A.x", "A x", "A．x" all occur in zh_test.txt


def parse_logiqa(path: Path) -> list[dict]:
    """LogiQA text format: 8 lines per item (blank, gold letter a-d, context, question, 4 options)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    items = []
    i = 0
    while i < len(lines):
        block = lines[i : i + 8]
        if len(block) != 8 or block[0].strip() or block[1].strip() not in ("a", "b", "c", "d"):
            raise ValueError(f"{path}:{i + 1}: malformed LogiQA item {block!r}")
        lettered = {}
        for k, line in enumerate(block[4:8]):
            match = _OPTION.match(line)
            if match is None:
                raise ValueError(f"{path}:{i + 5 + k}: option does not start with a letter A-D: {line!r}")
            lettered[match.group(1)] = line[match.end():].strip()
        if sorted(lettered) != ["A", "B", "C", "D"]:  # 19 items list their options as A, C, B, D
            raise ValueError(f"{path}:{i + 5}: options are not A-D once each: {block[4:8]!r}")
        options = [lettered[letter] for letter in "ABCD"]
        items.append({"ind": len(items), "label": block[1].strip(), "context": block[2].strip(),
                      "question": block[3].strip(), "options": options})
        i += 8
    return items


def make_logiqa_zh(src: Path, n: int | None) -> list[dict]:
    items = parse_logiqa(src / "logiqa_zh" / "zh_test.txt")
    if len(items) != 651:
        raise ValueError(f"expected 651 LogiQA-zh test items, found {len(items)}")
    rng = random.Random(SEED)
    return [items[i] for i in rng.sample(range(len(items)), len(items) if n is None else n)]


def make_xcopa_zh(src: Path, n: int | None) -> list[dict]:
    with (src / "xcopa_zh" / "test.zh.jsonl").open(encoding="utf-8") as fh:
        items = [json.loads(line) for line in fh if line.strip()]
    if len(items) != 500:
        raise ValueError(f"expected 500 XCOPA-zh test items, found {len(items)}")
    rng = random.Random(SEED)
    return [items[i] for i in rng.sample(range(len(items)), len(items) if n is None else n)]


SOURCES = {  # file -> (repo, commit, path in repo, licence, subset rule, fields)
    "cmmlu.jsonl": (
        "haonan-li/CMMLU", "d6e7b716d8ac694f38969a6c0407437d1fded799",
        "`data/test/*.csv` (67 subjects, 11,582 items)",
        "no LICENSE file; `README.md` states CC BY-NC-SA 4.0",
        "per-subject seeded shuffle, then round-robin over subjects (alphabetical) until 200",
        "`Question`, `A`-`D`, `Answer` (letter), `subject`, `subject_zh`",
    ),
    "ceval.jsonl": (
        "TsingmaoAI/MI-optimize (copy of HF `ceval/ceval-exam`)", "b147ba570e34b6f176f4ea3bbfc93ce02d4e0a10",
        "`mi_optimize/datasets/ceval-exam/val/*_val.csv` (52 subjects, 1,346 items)",
        "dataset card states CC BY-NC-SA 4.0 (repo `LICENSE` Apache-2.0)",
        "per-subject seeded shuffle, then round-robin over subjects (alphabetical) until 200",
        "`id`, `question`, `A`-`D`, `answer` (letter), `subject`, `subject_zh`",
    ),
    "logiqa_zh.jsonl": (
        "lgw863/LogiQA-dataset", "ff6c4cbca47627b3ac2da94a29fa28204a167b41",
        "`zh_test.txt` (651 items, 8 lines each)",
        "no LICENSE file and no licence statement in the README (research use; check before redistribution)",
        "`random.Random(1234).sample(range(651), 200)`; option letter prefixes (`A.`, `A `, `A．`, ...) "
        "stripped; options put in A-D order (19 items print them as A, C, B, D; the gold letter refers to "
        "the printed letter)",
        "`ind` (item index in file), `label` (a-d), `context`, `question`, `options` (4 str)",
    ),
    "xcopa_zh.jsonl": (
        "cambridgeltl/xcopa", "e2e9d7f105a758ee869cd13e0fe251ef93a29840",
        "`data/zh/test.zh.jsonl` (500 items)",
        "`LICENSE.md` = CC BY 4.0",
        "`random.Random(1234).sample(range(500), 200)`; records verbatim",
        "`premise`, `choice1`, `choice2`, `question` (cause/effect), `label` (0/1), `idx`, `changed`",
    ),
}


FULL_RULE = "the complete split, in the subset's order (the 200-item subset is its first 200 lines)"


def write_sources(out_dir: Path, counts: dict[str, int]) -> None:
    lines = [
        "# Chinese versatility evaluation data (config/paper.yaml)",
        "",
        "Generated by `tools/data/make_versatility_zh_subsets.py` (seed 1234, standard library only)",
        "from copies of public GitHub repositories (retrieved 2026-11-25; commits below). Do not edit by",
        "hand: re-run the script and commit its outputs. Each benchmark comes twice: a 200-item subset",
        "(`<name>.jsonl`, for CPU runs: estimates with stderr) and the complete split (`<name>_full.jsonl`,",
        "what `config/paper.yaml` evaluates on a cluster, as the paper does). The subset is the first 200",
        "lines of the complete file. Task YAMLs: `evaluators/tasks/cofitune_<name>.yaml` and",
        "`cofitune_<name>_full.yaml` (0-shot, prompts as in lm-eval 0.4.13's cmmlu / ceval-valid / logiqa /",
        "xcopa_zh).",
        "",
        "| file | items | source repo | commit | path in repo | licence (as stated) | subset rule | fields | sha256 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, (repo, commit, path, licence, rule, fields) in SOURCES.items():
        for file, file_rule in ((name, rule), (name.replace(".jsonl", "_full.jsonl"), FULL_RULE)):
            sha = _sha256(out_dir / file)
            cells = [f"`{file}`", str(counts[file]), repo, commit, path, licence, file_rule, fields, f"`{sha}`"]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "CMMLU and C-Eval are CC BY-NC-SA (non-commercial); LogiQA states no licence.", ""]
    (out_dir / "SOURCES.md").write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", type=Path, required=True, help="folder of the raw upstream files (see SOURCES.md)")
    parser.add_argument("--repo", type=Path, default=Path("."))
    args = parser.parse_args()
    out_dir = args.repo / OUT_REL
    counts = {}
    for name, make in (("cmmlu", make_cmmlu), ("ceval", make_ceval),
                       ("logiqa_zh", make_logiqa_zh), ("xcopa_zh", make_xcopa_zh)):
        for file, n in ((f"{name}.jsonl", N_ITEMS), (f"{name}_full.jsonl", None)):
            rows = make(args.src, n)
            _write_jsonl(out_dir / file, rows)
            counts[file] = len(rows)
            print(f"{out_dir / file}: {len(rows)} items")
    write_sources(out_dir, counts)


if __name__ == "__main__":
    main()
