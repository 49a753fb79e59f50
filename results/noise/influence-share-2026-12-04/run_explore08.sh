#!/usr/bin/env bash
# Influence's guarded default with explore 0.8 (weight 1), checked on seeds it was not chosen on
# (71-73) in three cells of the issue's kind: 20,000 samples, 8 epochs; nominal prune 0.7 with
# 30 % symmetric flips, nominal prune 0.3 on clean labels, nominal prune 0.7 with 30 % class-pair
# flips; each beside random pruning at the same realised visits (full data: the run.sh folders,
# same seeds). After `make trainer`; the first two lines ran side by side, then the third
# (2026-12-04, sixth session).
set -e
cd "$(dirname "$0")/../../.."
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
T=target/release/thresher-train
ARGS="--limit 20000 --epochs 8 --threads 1 --seeds 3 --first-seed 71 --policies full,influence --match-random"
OUT=results/noise/influence-share-2026-12-04
$T compare $ARGS --prune 0.7 --label-noise 0.3 --out $OUT/e08-prune07-sym30 > /dev/null &
$T compare $ARGS --prune 0.3 --label-noise 0 --out $OUT/e08-prune03-clean > /dev/null &
wait
$T compare $ARGS --prune 0.7 --label-noise 0.3 --label-noise-kind pairs --out $OUT/e08-prune07-pairs30 > /dev/null
