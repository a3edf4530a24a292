#!/usr/bin/env bash
# The GPU self-check (benchmarks/gpu_selfcheck.py) for a short lease on a machine with no registry access.
#   benchmarks/gpu_selfcheck.sh prepare        here, with pip and the demo's prepared model: writes .gpucheck/
#                                              (wheels the GPU image lacks, for Python 3.12, and the model's
#                                              config + tokenizer: no weights travel)
#   benchmarks/gpu_selfcheck.sh run OUT.json   there (carry .gpucheck): installs the wheels to /tmp/site and
#                                              runs every stage on the random-weight model of the real shape
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=.gpucheck
# lm-eval and what it needs beyond the GPU image's packages (device tool's KINDS.md lists that image):
# pure-Python ones (built here as py3 wheels where the index has only an sdist) and compiled ones (cp312)
PURE="lm_eval==0.4.13 datasets==5.2.0 evaluate==0.4.6 dill==0.4.1 multiprocess==0.70.19 sqlitedict==2.1.0
  pytablewriter==1.2.1 DataProperty mbstrdecoder pathvalidate tabledata tcolorpy typepy word2number==1.1
  more-itertools==11.2.1 jsonlines rouge_score==0.1.2 nltk==3.10.4 absl-py"
COMPILED="zstandard xxhash==4.1.0 chardet"
case "${1:-}" in
  prepare)
    grep -qx '/.gpucheck/' .git/info/exclude 2>/dev/null || echo '/.gpucheck/' >> .git/info/exclude
    src=${2:-results/models/smollm2-135m/base}
    [ -f "$src/config.json" ] || { echo "no prepared model at $src (run make demo, or pass its folder)" >&2; exit 2; }
    rm -rf "$DIR" && mkdir -p "$DIR/model" "$DIR/wheels"
    cp "$src"/config.json "$src"/tokenizer*.json "$src"/generation_config.json "$DIR/model/"
    [ -f "$src/chat_template.jinja" ] && cp "$src/chat_template.jinja" "$DIR/model/"
    # shellcheck disable=SC2086
    python3 -m pip wheel --quiet --no-deps -w "$DIR/wheels" $PURE
    # shellcheck disable=SC2086
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d "$DIR/wheels" $COMPILED
    du -sh "$DIR"
    ;;
  run)
    out=${2:?usage: $0 run OUT.json}
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      "$DIR"/wheels/*.whl
    export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
    python3 benchmarks/gpu_selfcheck.py --random-from "$DIR/model" --out "$out" "${@:3}"
    ;;
  *) sed -n 2,7p "$0"; exit 2 ;;
esac
