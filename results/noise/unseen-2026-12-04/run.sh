#!/usr/bin/env bash
# Every score-based default on noise and seeds no rule was chosen on (seeds 81-83), the issue's
# setting otherwise (20,000 samples, 8 epochs), each beside full data and random pruning at the
# same realised visits. Three cells, one after the other; in each the two `compare` runs go
# side by side. After `make trainer` (2026-12-04, sixth session).
set -e
cd "$(dirname "$0")/../../.."
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
T=target/release/thresher-train
OUT=results/noise/unseen-2026-12-04

# cell NAME ARGS...: the policies in two halves, NAME-a (with full data) and NAME-b.
cell() {
    local name=$1
    shift
    local args="--limit 20000 --epochs 8 --threads 1 --seeds 3 --first-seed 81 --match-random $*"
    $T compare $args --policies full,epsilon_greedy,ucb,el2n --out $OUT/$name-a > /dev/null 2>&1 &
    $T compare $args --policies grand,forgetting,influence --out $OUT/$name-b > /dev/null 2>&1 &
    wait
}

cell sym40 --prune 0.7 --label-noise 0.4
cell clean --prune 0.7 --label-noise 0
cell pairs20-p03 --prune 0.3 --label-noise 0.2 --label-noise-kind pairs
