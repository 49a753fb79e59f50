#!/usr/bin/env bash
# One cell of this folder: `compare` at a budget, in the issue's setting.
# usage: run.sh NAME FIRSTSEED SEEDS BUDGET NOISE KIND POLICIES   (KIND: symmetric or pairs)
# e.g.   run.sh s40 111 10 0.3 0.4 symmetric random,epsilon_greedy,ucb,epsilon_greedy:explore=1
#        run.sh p30 111 10 0.3 0.3 pairs random,epsilon_greedy,epsilon_greedy:explore=1
# Writes NAME/ and NAME.log beside this script (the folder keeps compare.json and compare.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../../.."
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):${LD_LIBRARY_PATH:-}"
target/release/thresher-train compare --limit 20000 --epochs 8 --budget "$4" --threads 1 \
    --seeds "$3" --first-seed "$2" --policies "$7" --label-noise "$5" --label-noise-kind "$6" \
    --out "$here/$1" > "$here/$1.log" 2>&1
