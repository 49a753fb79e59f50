#!/usr/bin/env bash
# Every score-based default on a noise rate and seeds none of them was chosen on: 40 % symmetric
# flips, seeds 81-83, the issue's setting otherwise (20,000 samples, 8 epochs, nominal prune 0.7),
# each beside random pruning at the same realised visits and full data. After `make trainer`;
# the two lines ran side by side (2026-12-04, sixth session).
set -e
cd "$(dirname "$0")/../../.."
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
T=target/release/thresher-train
ARGS="--limit 20000 --epochs 8 --threads 1 --seeds 3 --first-seed 81 --prune 0.7 --label-noise 0.4 --match-random"
OUT=results/noise/unseen-2026-12-04
$T compare $ARGS --policies full,epsilon_greedy,ucb,el2n --out $OUT/sym40-a > /dev/null 2>&1 &
$T compare $ARGS --policies grand,forgetting,influence --out $OUT/sym40-b > /dev/null 2>&1 &
wait
