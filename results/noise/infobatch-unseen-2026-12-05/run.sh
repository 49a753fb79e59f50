#!/usr/bin/env bash
# InfoBatch (its default, r = 0.7) on seeds 81-83, which no rule was chosen on, in the issue's
# setting (20,000 samples, 8 epochs): 40 % symmetric flips (full data for this cell is in
# ../unseen-2026-12-04/sym40-a) and 30 % class-pair flips (full data beside it). The two
# `compare` runs side by side. After `make trainer` (2026-12-05, eighth session).
set -e
cd "$(dirname "$0")/../../.."
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
T=target/release/thresher-train
OUT=results/noise/infobatch-unseen-2026-12-05
A="--limit 20000 --epochs 8 --threads 1 --seeds 3 --first-seed 81 --prune 0.7"
$T compare $A --label-noise 0.4 --policies infobatch --out $OUT/sym40 > /dev/null 2>&1 &
$T compare $A --label-noise 0.3 --label-noise-kind pairs --policies full,infobatch --out $OUT/pairs30 > /dev/null 2>&1 &
wait
