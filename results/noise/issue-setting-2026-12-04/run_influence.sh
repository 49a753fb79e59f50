#!/usr/bin/env bash
# The issue's own setting, as run_static.sh, for influence with a random share (explore 0.5,
# the guarded default since the fifth session) rescaled and not, beside full data and random
# pruning at the same realised visits: seeds 61-63, clean labels and 20 % symmetric flips,
# nominal prune 0.7. After `make trainer`; the two lines ran side by side (2026-12-04, fifth
# session).
set -e
cd "$(dirname "$0")/../../.."
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
T=target/release/thresher-train
ARGS="--limit 20000 --epochs 8 --prune 0.7 --threads 1 --seeds 3 --first-seed 61 --policies full,random,influence,influence:rescale=false --match-random"
OUT=results/noise/issue-setting-2026-12-04
$T compare $ARGS --label-noise 0 --out $OUT/clean-influence > /dev/null &
$T compare $ARGS --label-noise 0.2 --out $OUT/sym20-influence > /dev/null &
wait
