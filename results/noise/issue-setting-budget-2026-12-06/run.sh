#!/usr/bin/env bash
# The issue's setting (Fashion-MNIST, the first 20,000 training samples and the whole 10,000-
# sample test set, 8 epochs, every policy at its default) at a *budget* of 0.3: 70 % of full
# data's sample-visits really saved, every policy at exactly the same visits, so random at
# the same budget is the equal-visits baseline. Seeds 71-73, never used before; clean labels
# and 20 % symmetric flips, the two lines side by side. After `make trainer`.
set -e
cd "$(dirname "$0")/../../.."
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
T=target/release/thresher-train
ARGS="--limit 20000 --epochs 8 --budget 0.3 --threads 1 --seeds 3 --first-seed 71 --policies full,random,infobatch,epsilon_greedy,ucb,el2n,grand,forgetting,influence"
OUT=results/noise/issue-setting-budget-2026-12-06
$T compare $ARGS --label-noise 0 --out $OUT/clean > /dev/null &
$T compare $ARGS --label-noise 0.2 --out $OUT/sym20 > /dev/null &
wait
