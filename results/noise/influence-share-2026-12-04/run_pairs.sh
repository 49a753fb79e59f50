#!/usr/bin/env bash
# Forgetting's and influence's current defaults (random share at weight 1) with 30 % class-pair
# flips (class c -> c + 1) in the issue's setting: 20,000 samples, 8 epochs, nominal prune 0.7,
# seeds 61-63, beside full data and random pruning at the same realised visits. After
# `make trainer` (2026-12-04, fifth session, beside a `make test`).
set -e
cd "$(dirname "$0")/../../.."
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
target/release/thresher-train compare --limit 20000 --epochs 8 --prune 0.7 --threads 1 --seeds 3 \
    --first-seed 61 --policies full,random,forgetting,influence --match-random \
    --label-noise 0.3 --label-noise-kind pairs --out results/noise/influence-share-2026-12-04/prune07-pairs30 > /dev/null
