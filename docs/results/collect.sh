#!/usr/bin/env bash
# Copy a real-model run (a clone that ran config/baselines.yaml) into docs/results and derive table + plots.
set -euo pipefail
SRC=${1:?usage: collect.sh RUN_CLONE [DEST]}; DST=$(realpath -m "${2:-$(dirname "$0")/smollm2-135m-squad}")
rm -rf "$DST/search" "$DST/runs" "$DST/rule_benchmarks"; mkdir -p "$DST/search" "$DST/runs"  # README.md is hand-written: kept
cp $SRC/results/search/smollm2-135m/squad/*.json "$DST/search/"
metrics=()
for m in $SRC/results/runs/smollm2-135m/squad/*/*/metrics.json; do
  rel=${m#$SRC/results/runs/smollm2-135m/squad/}; d=$(dirname "$rel")
  mkdir -p "$DST/runs/$d"; cp "$m" "$DST/runs/$d/metrics.json"; metrics+=("$DST/runs/$d/metrics.json")
  [ -f "$SRC/results/runs/smollm2-135m/squad/$d/checkpoint/train_log.jsonl" ] && cp "$SRC/results/runs/smollm2-135m/squad/$d/checkpoint/train_log.jsonl" "$DST/runs/$d/" || true
done
mkdir -p "$DST/rule_benchmarks"; (cd $SRC/benchmarks/rules && find . -name "*.tsv" | while read f; do n=$(echo "${f#./}" | sed 's#smollm2-135m/squad/##; s#/#__#g'); cp "$f" "$DST/rule_benchmarks/$n"; done)
cd "$(dirname "$0")/../.."
.venv/bin/python -m cofitune aggregate --metrics "${metrics[@]}" --csv "$DST/table.csv" --md "$DST/table.md"
levels=$(ls $DST/search/level*.json)
.venv/bin/python -m cofitune plot-search --levels $levels --title "Tree search: SmolLM2-135M-Instruct on SQuAD (adaptive, Uni)" --png "$DST/search.png" --svg "$DST/search.svg"
.venv/bin/python -m cofitune plot-pareto --table "$DST/table.csv" --model smollm2-135m --task squad --png "$DST/pareto.png" --svg "$DST/pareto.svg"
