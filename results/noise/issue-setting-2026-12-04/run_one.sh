#!/usr/bin/env bash
# The issue's own setting (Fashion-MNIST, 20,000 training samples, 8 epochs, nominal prune 0.7,
# every policy at its default) on seeds the project had not used (61-63), clean labels and 20 %
# symmetric flips, each policy beside random pruning at the same realised visits. After
# `make trainer`; the two lines ran side by side (2026-12-04, 08:38-09:08 UTC).
set -e
cd "$(dirname "$0")/../../.."
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
T=target/release/thresher-train
ARGS="--limit 20000 --epochs 8 --prune 0.7 --threads 1 --seeds 3 --first-seed 61 --policies full,random,infobatch,epsilon_greedy,ucb,el2n --match-random"
OUT=results/noise/issue-setting-2026-12-04
$T compare $ARGS --label-noise 0 --out $OUT/clean > /dev/null &
$T compare $ARGS --label-noise 0.2 --out $OUT/sym20 > /dev/null &
wait
