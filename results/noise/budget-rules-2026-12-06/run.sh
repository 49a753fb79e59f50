#!/usr/bin/env bash
# Two budget rules chosen by measurement (docs/policies.md, "A budget fixed in advance" and
# "el2n / grand / forgetting"): InfoBatch's annealing epochs are paid in full only when the
# budget can afford them, and forgetting rescales its drawn share under a budget. The issue's
# setting at budget 0.3 (Fashion-MNIST, first 20,000 training samples, whole test set, 8
# epochs), clean labels and 20 % symmetric flips side by side.
#   tried/    the variants tried before the change, by config keys (trainer of 4145b93), on
#             seeds 71-73 (the seeds of ../issue-setting-budget-2026-12-06/) and the two kept
#             ones again on unseen seeds 91-93; compare.md/json only (the logs are not kept).
#   after/    the defaults after the change, seeds 71-73 (this script).
# After `make trainer`.
set -e
cd "$(dirname "$0")/../../.."
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
T=target/release/thresher-train
ARGS="--limit 20000 --epochs 8 --budget 0.3 --threads 1 --seeds 3 --first-seed 71 --policies random,infobatch,forgetting"
OUT=results/noise/budget-rules-2026-12-06/after
$T compare $ARGS --label-noise 0 --out $OUT/clean > /dev/null &
$T compare $ARGS --label-noise 0.2 --out $OUT/sym20 > /dev/null &
wait
