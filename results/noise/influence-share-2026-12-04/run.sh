#!/usr/bin/env bash
# Influence's guarded default with its random share (explore 0.5, weight 1), checked on seeds
# it was not chosen on (71-73) in two other cells of the issue's kind: 20,000 samples, 8 epochs,
# nominal prune 0.7 with 30 % symmetric flips, and nominal prune 0.3 on clean labels; each
# beside random pruning at the same realised visits. After `make trainer`; the two lines ran
# side by side (2026-12-04, fifth session).
set -e
cd "$(dirname "$0")/../../.."
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
T=target/release/thresher-train
ARGS="--limit 20000 --epochs 8 --threads 1 --seeds 3 --first-seed 71 --policies full,random,influence --match-random"
OUT=results/noise/influence-share-2026-12-04
$T compare $ARGS --prune 0.7 --label-noise 0.3 --out $OUT/prune07-sym30 > /dev/null &
$T compare $ARGS --prune 0.3 --label-noise 0 --out $OUT/prune03-clean > /dev/null &
wait
