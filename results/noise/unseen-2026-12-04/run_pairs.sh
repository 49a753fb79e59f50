#!/usr/bin/env bash
# As run.sh, with 20 % class-pair flips (c -> c + 1) at nominal prune 0.3: every score-based
# default, seeds 81-83, the issue's setting (20,000 samples, 8 epochs), beside full data and
# random pruning at the same realised visits. After `make trainer`; the two lines ran side by
# side (2026-12-04, sixth session).
set -e
cd "$(dirname "$0")/../../.."
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
T=target/release/thresher-train
ARGS="--limit 20000 --epochs 8 --threads 1 --seeds 3 --first-seed 81 --prune 0.3 --label-noise 0.2 --label-noise-kind pairs --match-random"
OUT=results/noise/unseen-2026-12-04
$T compare $ARGS --policies full,epsilon_greedy,ucb,el2n --out $OUT/pairs20-p03-a > /dev/null 2>&1 &
$T compare $ARGS --policies grand,forgetting,influence --out $OUT/pairs20-p03-b > /dev/null 2>&1 &
wait
