#!/usr/bin/env bash
# The policies whose draws changed on 2026-12-05 (epsilon_greedy's and ucb's random share and
# infobatch's drops by selection sampling in id order instead of a partial Fisher-Yates;
# infobatch's mean summed in 16 lanes) on seeds no rule was chosen on (111-113), the issue's
# setting (20,000 samples, 8 epochs, nominal prune 0.7) with 20 % symmetric flips, beside full
# data and random pruning at the realised visits of each (--match-random); then the same on clean
# labels. In each cell the two `compare` runs go side by side. After `make trainer` (commit
# 80dda69).
set -e
cd "$(dirname "$0")/../../.."
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
T=target/release/thresher-train
OUT=results/noise/newdraw-2026-12-05
cell() {
    local name=$1
    shift
    local args="--limit 20000 --epochs 8 --threads 1 --seeds 3 --first-seed 111 --prune 0.7 $*"
    $T compare $args --policies full,epsilon_greedy,ucb --match-random --out $OUT/$name-a > /dev/null 2>&1 &
    $T compare $args --policies infobatch --match-random --out $OUT/$name-b > /dev/null 2>&1 &
    wait
}
[ "${1:-all}" = clean ] || cell sym20 --label-noise 0.2
cell clean --label-noise 0
