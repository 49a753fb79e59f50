#!/usr/bin/env bash
# Every score-based default of the eighth session on seeds no rule was chosen on (101-103), the
# issue's setting (20,000 samples, 8 epochs, nominal prune 0.7), beside full data and random
# pruning at the guarded policies' realised visits (52.5 %: random:prune=0.525, the plan
# --match-random makes for them). Two cells, one after the other; in each the two `compare`
# runs go side by side. After `make trainer` (2026-12-05).
set -e
cd "$(dirname "$0")/../../.."
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
T=target/release/thresher-train
OUT=results/noise/unseen101-2026-12-05
cell() {
    local name=$1
    shift
    local args="--limit 20000 --epochs 8 --threads 1 --seeds 3 --first-seed 101 --prune 0.7 $*"
    $T compare $args --policies full,random:prune=0.525,epsilon_greedy,ucb --out $OUT/$name-a > /dev/null 2>&1 &
    $T compare $args --policies el2n,grand,forgetting,influence --out $OUT/$name-b > /dev/null 2>&1 &
    wait
}
cell pairs30 --label-noise 0.3 --label-noise-kind pairs
cell clean --label-noise 0
