#!/usr/bin/env bash
# Add a real-model run (a clone that ran targets of config/baselines.yaml or config/leaderboard.yaml) to docs/results,
# then derive the table, leaderboard and plots from every metrics file collected so far. Additive: runs collected from earlier clones
# (other sessions, other commits) stay, each with its own provenance; a run present in both is replaced.
set -euo pipefail
SRC=${1:?usage: collect.sh RUN_CLONE [DEST]}; DST=$(realpath -m "${2:-$(dirname "$0")/smollm2-135m-squad}")
RUNS=$SRC/results/runs/smollm2-135m/squad
mkdir -p "$DST/search" "$DST/runs" "$DST/rule_benchmarks"   # README.md is hand-written: never touched
if compgen -G "$SRC/results/search/smollm2-135m/squad/*.json" >/dev/null; then
  cp "$SRC"/results/search/smollm2-135m/squad/*.json "$DST/search/"
fi
for m in "$RUNS"/*/*/metrics.json; do
  [ -f "$m" ] || continue
  d=$(dirname "${m#"$RUNS"/}")
  mkdir -p "$DST/runs/$d"; cp "$m" "$DST/runs/$d/metrics.json"
  if [ -f "$RUNS/$d/checkpoint/train_log.jsonl" ]; then cp "$RUNS/$d/checkpoint/train_log.jsonl" "$DST/runs/$d/"; fi
done
if [ -d "$SRC/benchmarks/rules" ]; then
  (cd "$SRC/benchmarks/rules" && find . -name "*.tsv" | while read -r f; do
     n=$(echo "${f#./}" | sed 's#smollm2-135m/squad/##; s#/#__#g'); cp "$f" "$DST/rule_benchmarks/$n"; done)
fi
cd "$(dirname "$0")/../.."
mapfile -t metrics < <(find "$DST/runs" -name metrics.json | sort)
.venv/bin/python -m cofitune aggregate --metrics "${metrics[@]}" --csv "$DST/table.csv" --md "$DST/table.md" \
  --claims-csv "$DST/claims.csv" --claims-md "$DST/claims.md" \
  --leaderboard-csv "$DST/leaderboard.csv" --leaderboard-md "$DST/leaderboard.md" \
  --leaderboard-verdicts-md "$DST/verdicts.md"
mapfile -t levels < <(find "$DST/search" -name "level*.json" | sort)
if [ ${#levels[@]} -gt 0 ]; then
  .venv/bin/python -m cofitune plot-search --levels "${levels[@]}" \
    --title "Tree search: SmolLM2-135M-Instruct on SQuAD (adaptive, Uni)" --png "$DST/search.png" --svg "$DST/search.svg"
fi
if [ -f "$DST/search/grid.json" ]; then
  .venv/bin/python -m cofitune plot-search --levels "$DST/search/grid.json" \
    --title "Exhaustive grid: SmolLM2-135M-Instruct on SQuAD (coarse-only trials, Uni)" \
    --png "$DST/grid.png" --svg "$DST/grid.svg"
fi
.venv/bin/python -m cofitune plot-pareto --table "$DST/table.csv" --metrics "${metrics[@]}" --model smollm2-135m \
  --task squad --png "$DST/pareto.png" --svg "$DST/pareto.svg"
.venv/bin/python -m cofitune sync-readme   # the generated blocks of README.md and docs/*.md quote these files
