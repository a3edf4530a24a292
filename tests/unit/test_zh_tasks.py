"""Chinese speciality tasks and versatility suites of config/paper.yaml: loaders, scorers, data, YAMLs, config."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml

from cofitune.pipeline.config import check_config
from cofitune.pipeline.task_sheet import read_task_sheet
from cofitune.pipeline.data import load_split, prepare_task
from cofitune.pipeline.records import DataError
from evaluators.speciality import get_scorer

REPO = Path(__file__).resolve().parents[2]
# the shared raw data sit beside the checkout (as CI lays them out); users without them skip
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
NEW_SUITES = ("cmmlu", "ceval", "logiqa_zh", "xcopa_zh")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _jsonl(rows: list) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows)


# --------------------------------------------------------------------------- loaders

LAW_ITEM = [{"instruction": "下列说法正确的是？\n请给出详细的推理过程之后再给出答案。", "input": "", "output": "根据民法典，A 正确。"}]


def test_lawyer_llama_loader(tmp_path):
    path = _write(tmp_path / "law.json", json.dumps([LAW_ITEM, LAW_ITEM], ensure_ascii=False))
    ex = load_split(path, "lawyer_llama", "请回答法律问题。", None)
    assert len(ex) == 2
    assert ex[1] == {"id": "law.json:item 2", "instruction": "请回答法律问题。",
                     "input": "下列说法正确的是？\n请给出详细的推理过程之后再给出答案。",
                     "output": "根据民法典，A 正确。", "references": ["根据民法典，A 正确。"]}


@pytest.mark.parametrize("content, match", [
    ([LAW_ITEM, [{"instruction": "q", "input": ""}]], r":item 2: missing field 'output'"),
    ([LAW_ITEM, [{"instruction": "q", "input": "", "output": 3}]], r":item 2: field 'output' must be str"),
    ([LAW_ITEM, LAW_ITEM * 2], r":item 2: expected a 1-turn list"),
    ([LAW_ITEM, "text"], r":item 2: expected a JSON object"),
    ({"a": 1}, r": expected a JSON array"),
])
def test_lawyer_llama_bad_item_names_file_and_item(tmp_path, content, match):
    path = _write(tmp_path / "law.json", json.dumps(content, ensure_ascii=False))
    with pytest.raises(DataError, match=re.escape(str(path)) + match):
        load_split(path, "lawyer_llama", "I", None)


def test_lawyer_llama_invalid_json_names_line(tmp_path):
    path = _write(tmp_path / "law.json", '[\n [{"instruction": "q", "input": "", "output": "a"}],\n oops\n]')
    with pytest.raises(DataError, match=re.escape(f"{path}:3: invalid JSON")):
        load_split(path, "lawyer_llama", "I", None)


GSM = {"question": "Tom has 3 apples and buys 1,000 more. How many?",
       "answer": "3 + 1000 = <<3+1000=1003>>1003\n#### 1,003"}


def test_gsm8k_loader(tmp_path):
    path = _write(tmp_path / "gsm.jsonl", _jsonl([GSM]))
    (ex,) = load_split(path, "gsm8k", "Solve.", None)
    assert ex["input"] == GSM["question"]
    assert ex["output"] == "3 + 1000 = 1003\n#### 1,003"  # calculator annotation stripped
    assert ex["references"] == ["1003"] and ex["id"] == "gsm.jsonl:1"


def test_gsm8k_bad_line_names_file_and_line(tmp_path):
    path = _write(tmp_path / "gsm.jsonl", _jsonl([GSM, {"question": "q", "answer": "no final answer"}]))
    with pytest.raises(DataError, match=re.escape(f"{path}:2: field 'answer' must end with '#### <number>'")):
        load_split(path, "gsm8k", "I", None)
    path = _write(tmp_path / "gsm2.jsonl", _jsonl([GSM, '{"question": "q"']))
    with pytest.raises(DataError, match=re.escape(f"{path}:2: invalid JSON")):
        load_split(path, "gsm8k", "I", None)


def test_mgsm_loader(tmp_path):
    path = _write(tmp_path / "mgsm_zh.tsv", "珍妮特每天卖 9 颗蛋，每颗 2 美元。她赚多少钱？\t18\n\n一共多少？\t114,200\n")
    ex = load_split(path, "mgsm", "解题。", None)
    assert [e["references"] for e in ex] == [["18"], ["114200"]]
    assert ex[1]["id"] == "mgsm_zh.tsv:3" and ex[0]["input"].startswith("珍妮特")


@pytest.mark.parametrize("bad, match", [
    ("问题\t1\t2", ":2: expected 2 tab-separated fields"),
    ("问题\t十八", ":2: answer '十八' is not a number"),
    ("\t5", ":2: field 'question' is empty"),
])
def test_mgsm_bad_line_names_file_and_line(tmp_path, bad, match):
    path = _write(tmp_path / "m.tsv", f"问题\t18\n{bad}\n")
    with pytest.raises(DataError, match=re.escape(f"{path}{match}")):
        load_split(path, "mgsm", "I", None)


def test_math_word_problems_dispatches_on_suffix(tmp_path):
    jsonl = _write(tmp_path / "train.jsonl", _jsonl([GSM]))
    tsv = _write(tmp_path / "test.tsv", "问题\t18\n")
    assert load_split(jsonl, "math_word_problems", "I", None)[0]["references"] == ["1003"]
    assert load_split(tsv, "math_word_problems", "I", None)[0]["references"] == ["18"]


def _doc(paragraphs, selected, most):
    return {"title": "t", "paragraphs": paragraphs, "is_selected": selected, "most_related_para": most}


DUREADER = {"question": "北京是哪个国家的首都", "question_id": 7, "answers": ["中国。", "中华人民共和国"],
            "documents": [_doc(["无关", "北京是中国的首都。"], True, 1), _doc(["广告"], False, 0),
                          _doc(["首都：北京"], True, 0)]}


def test_dureader_loader(tmp_path):
    no_answer = {**DUREADER, "question_id": 8, "answers": []}
    none_selected = {**DUREADER, "question_id": 9,
                     "documents": [_doc(["甲"], False, 0), _doc(["乙", "丙"], False, 1)]}
    path = _write(tmp_path / "search.dev.json", _jsonl([DUREADER, no_answer, none_selected]))
    ex = load_split(path, "dureader", "请根据文档回答问题。", None)
    assert [e["id"] for e in ex] == ["7", "9"]  # the question without a reference answer is skipped
    assert ex[0]["input"] == "文档：北京是中国的首都。\n首都：北京\n问题：北京是哪个国家的首都"
    assert ex[0]["output"] == "中国。" and ex[0]["references"] == ["中国。", "中华人民共和国"]
    assert ex[1]["input"] == "文档：甲\n丙\n问题：北京是哪个国家的首都"  # no selected document: all of them


@pytest.mark.parametrize("edit, match", [
    ({"documents": [_doc(["x"], True, 3)]}, ":2: most_related_para 3 out of range"),
    ({"answers": ["ok", ""]}, ":2: field 'answers' must be a non-empty list of non-empty strings"),
    ({"documents": "x"}, ":2: field 'documents' must be list"),
])
def test_dureader_bad_line_names_file_and_line(tmp_path, edit, match):
    path = _write(tmp_path / "d.json", _jsonl([DUREADER, {**DUREADER, **edit}]))
    with pytest.raises(DataError, match=re.escape(f"{path}{match}")):
        load_split(path, "dureader", "I", None)


def test_dureader_missing_field(tmp_path):
    bad = {k: v for k, v in DUREADER.items() if k != "documents"}
    path = _write(tmp_path / "d.json", _jsonl([DUREADER, bad]))
    with pytest.raises(DataError, match=re.escape(f"{path}:2: missing field 'documents'")):
        load_split(path, "dureader", "I", None)


# --------------------------------------------------------------------------- scorers (hand-computed values)

def test_math_numeric_extract():
    m = get_scorer("math_numeric")
    assert m.PRIMARY == "accuracy" and m.HIGHER_IS_BETTER == {"accuracy": True}
    assert m.extract("她每天赚 9 × 2 = 18 美元。答案：18") == "18"
    assert m.extract("共 1,200 元，所以答案是 １８。") == "18"  # full-width digits via NFKC; the last number wins
    assert m.extract("1,200 元") == "1200"
    assert m.extract("温度是 -3.5 度") == "-3.5"
    assert m.extract("48-24=24") == "24"
    assert m.extract("The answer is 72.") == "72"
    assert m.extract("没有数字") == ""


@pytest.mark.parametrize("pred, refs, expected", [
    ("18", ["18"], 100.0), ("18.00", ["18"], 100.0), ("114200", ["114,200"], 100.0), ("17", ["18"], 0.0),
    ("", ["18"], 0.0), ("0.5", ["0.50"], 100.0), ("-2", ["2"], 0.0), ("3", ["2", "3"], 100.0),
])
def test_math_numeric_score(pred, refs, expected):
    assert get_scorer("math_numeric").score(pred, refs) == {"accuracy": expected}


@pytest.mark.parametrize("pred, refs, expected", [
    ("我爱北京天安门", ["我爱天安门广场"], 100 * 5 / 7),  # LCS 我爱天安门 = 5; P = R = 5/7
    ("中华人民共和国", ["人民共和"], 100 * 8 / 11),     # LCS 4; P = 4/7, R = 1; F = 2PR/(P+R) = 8/11
    ("我爱北京", ["我爱天安门"], 100 * 4 / 9),          # LCS 2; P = 1/2, R = 2/5; F = 4/9
    ("abc", ["xyz", "ab"], 80.0),                       # max over refs: LCS 2, P = 2/3, R = 1
    ("ＡＢ c", ["abc"], 100.0),                         # NFKC + lower case, whitespace ignored
    ("", ["答案"], 0.0), ("答案", [""], 0.0), ("甲乙", ["丙丁"], 0.0),
])
def test_rouge_zh_golden(pred, refs, expected):
    r = get_scorer("rouge_zh")
    assert r.PRIMARY == "rouge_l" and r.HIGHER_IS_BETTER == {"rouge_l": True}
    assert r.score(pred, refs)["rouge_l"] == pytest.approx(expected)


def test_rouge_zh_lcs_and_extract():
    r = get_scorer("rouge_zh")
    assert r.lcs_length(list("ABCBDAB"), list("BDCABA")) == 4  # textbook example (CLRS)
    assert r.extract("  答案 \n") == "答案"
    assert r.score("我爱北京", "我爱天安门")["rouge_l"] == pytest.approx(100 * 4 / 9)  # a bare str is one reference


# --------------------------------------------------------------------------- committed data

TASK_COUNTS = {"law": (1500, 500), "math_zh": (2000, 250), "cag": (96, 99)}


@pytest.fixture(scope="module")
def sheet():
    return read_task_sheet(REPO / "config" / "tasks.yaml", REPO)


@pytest.fixture(scope="module")
def paper():
    return yaml.safe_load((REPO / "config" / "paper.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("task", sorted(TASK_COUNTS))
def test_task_sheet_entries_load(sheet, paper, task):
    spec = sheet[task]
    counts = []
    for split in ("train", "test"):
        ex = load_split(spec[split], spec["loader"], spec["instruction"], spec.get("max_input_chars"))
        assert all(e["input"] and e["output"] and e["references"] for e in ex)
        counts.append(len(ex))
    assert tuple(counts) == TASK_COUNTS[task]
    get_scorer(spec["evaluator"])
    from cofitune.pipeline.task_sheet import task_size

    assert task_size(paper, spec, "n_train") <= counts[0] and task_size(paper, spec, "n_test") <= counts[1]


def test_law_split_has_no_overlap(sheet):
    spec = sheet["law"]
    train, test = (load_split(spec[s], "lawyer_llama", "I", None) for s in ("train", "test"))
    assert not {e["input"] for e in train} & {e["input"] for e in test}


def test_prepare_task_on_law(sheet, tmp_path):
    meta = prepare_task(sheet["law"], tmp_path, n_train=5, n_test=3, seed=1234)
    assert meta["splits"]["train"]["usable"] == 1500 and meta["splits"]["test"]["n"] == 3
    assert len((tmp_path / "train.jsonl").read_text(encoding="utf-8").splitlines()) == 5


@pytest.mark.parametrize("folder", ["lawyer_llama", "mgsm", "gsm8k", "dureader", "versatility_zh"])
def test_sources_md_hashes_match_files(folder):
    root = REPO / "resources" / "data" / folder
    text = (root / "SOURCES.md").read_text(encoding="utf-8")
    files = sorted(p for p in root.iterdir() if p.name != "SOURCES.md")
    assert files
    for path in files:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{path.name}`"))
        assert hashlib.sha256(path.read_bytes()).hexdigest() in row, path.name
        assert re.search(r"\| [0-9a-f]{40} \|", row), f"{path.name}: no commit"


SUBSET_FIELDS = {
    "cmmlu": {"Question", "A", "B", "C", "D", "Answer", "subject", "subject_zh"},
    "ceval": {"id", "question", "A", "B", "C", "D", "answer", "subject", "subject_zh"},
    "logiqa_zh": {"ind", "label", "context", "question", "options"},
    "xcopa_zh": {"premise", "choice1", "choice2", "question", "label", "idx", "changed"},
}


@pytest.mark.parametrize("name", NEW_SUITES)
def test_versatility_zh_subsets(name):
    lines = (REPO / "resources" / "data" / "versatility_zh" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 200 and all(set(r) == SUBSET_FIELDS[name] for r in rows)
    assert len(set(lines)) == 200  # no duplicates
    if name in ("cmmlu", "ceval"):
        key = "Answer" if name == "cmmlu" else "answer"
        n_subjects = 67 if name == "cmmlu" else 52
        assert all(r[key] in "ABCD" and len(r[key]) == 1 for r in rows)
        assert len({r["subject"] for r in rows[:n_subjects]}) == n_subjects  # round-robin order
    if name == "logiqa_zh":
        assert all(r["label"] in ("a", "b", "c", "d") and len(r["options"]) == 4 and all(r["options"]) for r in rows)
    if name == "xcopa_zh":
        assert all(r["label"] in (0, 1) and r["question"] in ("cause", "effect") for r in rows)


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / "data" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs the shared raw data")
def test_subset_scripts_are_deterministic(tmp_path, monkeypatch):
    vers = _load_script("make_versatility_zh_subsets")
    tasks = _load_script("make_zh_task_data")
    for module in (vers, tasks):
        monkeypatch.setattr("sys.argv", ["x", "--src", str(SHARED), "--repo", str(tmp_path)])
        module.main()
    for folder in ("versatility_zh", "lawyer_llama", "mgsm", "gsm8k", "dureader"):
        for path in (tmp_path / "resources" / "data" / folder).iterdir():
            committed = REPO / "resources" / "data" / folder / path.name
            assert path.read_bytes() == committed.read_bytes(), committed


# --------------------------------------------------------------------------- versatility YAMLs

@pytest.mark.parametrize("name", NEW_SUITES)
def test_new_yaml_loads_into_task(name):
    from lm_eval.api.task import ConfigurableTask

    from evaluators import versatility as V

    text = (V.TASKS_DIR / f"cofitune_{name}.yaml").read_text(encoding="utf-8")
    assert "/work/" not in text and V.REPO_ROOT_PLACEHOLDER in text
    cfg = V.load_task_config(name)
    assert cfg["num_fewshot"] == 0 and cfg["output_type"] == "multiple_choice"
    task = ConfigurableTask(config=cfg)
    docs = list(task.eval_docs)
    assert len(docs) == 200
    for doc in docs:
        choices = task.doc_to_choice(doc)
        assert len(choices) == (2 if name == "xcopa_zh" else 4)
        assert 0 <= task.doc_to_target(doc) < len(choices)
        assert task.doc_to_text(doc).strip()
    if name == "xcopa_zh":
        doc = next(d for d in docs if d["question"] == "cause")
        assert task.doc_to_text(doc) == doc["premise"].strip()[:-1] + " 因为"
    if name in ("cmmlu", "ceval"):
        assert task.doc_to_text(docs[0]).endswith("\n答案：")


FULL_SIZES = {"cmmlu": 11582, "ceval": 1346, "logiqa_zh": 651, "xcopa_zh": 500}


@pytest.mark.parametrize("name", NEW_SUITES)
def test_full_suite_is_the_complete_split_with_the_subsets_prompt(name):
    """``<name>_full`` scores the complete split with the subset's prompt and metric, and the committed
    200-item subset is its first 200 items (so subset and full results are comparable item by item)."""
    from lm_eval.api.task import ConfigurableTask

    from evaluators import versatility as V

    full, sub = V.load_task_config(f"{name}_full"), V.load_task_config(name)
    assert full["task"] == f"cofitune_{name}_full"
    assert {k: v for k, v in full.items() if k not in ("task", "dataset_kwargs")} == \
        {k: v for k, v in sub.items() if k not in ("task", "dataset_kwargs")}
    full_docs = list(ConfigurableTask(config=full).eval_docs)
    assert len(full_docs) == FULL_SIZES[name]
    assert full_docs[:200] == list(ConfigurableTask(config=sub).eval_docs)


# --------------------------------------------------------------------------- config

def test_paper_config_validates(paper):
    from snakemake.utils import validate

    validate(paper, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    check_config(paper, REPO)
    t = paper["train"]
    assert t["micro_batch"] * t["grad_accum"] == 256 and t["lr"] == 4.0e-5 and t["epochs"] == 3
    assert t["max_length"] == 512 and t["bf16"] is True
    assert paper["tasks"] == ["law", "math_zh", "cag"] and len(paper["models"]) >= 3
    # the complete splits, not the 200-item CPU subsets
    assert paper["evaluation"]["versatility"]["suites"] == {"knowledge": ["cmmlu_full", "ceval_full"],
                                                            "reasoning": ["logiqa_zh_full", "xcopa_zh_full"]}
    assert paper["evaluation"]["versatility"]["limit"] is None


def test_paper_models_sheet():
    from cofitune.pipeline.sheets import read_sheet

    models = read_sheet(REPO / "config" / "paper_models.yaml")
    expected = {"qwen2.5-0.5b-instruct": ("Qwen/Qwen2.5-0.5B-Instruct", 24),
                "qwen2.5-1.5b-instruct": ("Qwen/Qwen2.5-1.5B-Instruct", 28),
                "qwen2.5-7b-instruct": ("Qwen/Qwen2.5-7B-Instruct", 28)}
    for name, (location, n_layers) in expected.items():
        spec = models[name]
        got = (spec["source"], spec["location"], spec["n_layers"], spec["dtype"])
        assert got == ("hub", location, n_layers, "bfloat16")
