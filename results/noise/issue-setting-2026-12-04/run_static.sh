#!/usr/bin/env bash
# The issue's own setting, as run_one.sh, for the score-based policies run_one.sh left out
# (GraNd, forgetting, influence), with full data and random pruning again so that each folder's
# table stands alone: seeds 61-63, clean labels and 20 % symmetric flips, nominal prune 0.7,
# each policy beside random pruning at the same realised visits. After `make trainer`; the two
# lines ran side by side (2026-12-04, fourth session).
set -e
cd "$(dirname "$0")/../../.."
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
T=target/release/thresher-train
ARGS="--limit 20000 --epochs 8 --prune 0.7 --threads 1 --seeds 3 --first-seed 61 --policies full,random,grand,forgetting,influence --match-random"
OUT=results/noise/issue-setting-2026-12-04
$T compare $ARGS --label-noise 0 --out $OUT/clean-static > /dev/null &
$T compare $ARGS --label-noise 0.2 --out $OUT/sym20-static > /dev/null &
wait
