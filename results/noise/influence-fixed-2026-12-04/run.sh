#!/usr/bin/env bash
# Influence's fixed part held to a stricter test (seventh session): with a random share, a
# sample misclassified at its last report is left out of the fixed part (it stays in the pool R
# the share draws from). Measured before it was the default with `influence:guard_window=1` and
# `--score-epochs 2`: the same plans as the default now makes (w = 1 moves exactly those samples
# out of the fixed part; the scoring epochs, max(score_epochs, w), stay 2 as with the default
# w = 2; every weight is 1 either way), in the six cells where influence's share was measured
# (influence-share-2026-12-04/); random and full data at the same visits are those folders'
# (same seeds, same realised visits). Two runs side by side, 2026-12-04 23:18-23:37 UTC; the
# folders' commands name /tmp/infl, copied here. Then `e09gw1-*`: the same with explore 0.9.
set -e
cd "$(dirname "$0")/../../.."
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
T=target/release/thresher-train
OUT=results/noise/influence-fixed-2026-12-04
cell() { # VARIANT TAG FIRST_SEED ARGS...
  local v=$1 tag=$2 seed=$3; shift 3
  $T compare --limit 20000 --epochs 8 --threads 1 --seeds 3 --score-epochs 2 \
    --policies "influence:$v" --first-seed "$seed" "$@" --out "$OUT/$tag" > /dev/null
}
cell guard_window=1 gw1-pairs71 71 --prune 0.7 --label-noise 0.3 --label-noise-kind pairs &
cell guard_window=1 gw1-pairs61 61 --prune 0.7 --label-noise 0.3 --label-noise-kind pairs
wait
cell guard_window=1 gw1-clean61 61 --prune 0.7 --label-noise 0 &
cell guard_window=1 gw1-sym2061 61 --prune 0.7 --label-noise 0.2
wait
cell guard_window=1 gw1-sym3071 71 --prune 0.7 --label-noise 0.3 &
cell guard_window=1 gw1-clean0371 71 --prune 0.3 --label-noise 0
wait
cell guard_window=1:explore=0.9 e09gw1-pairs71 71 --prune 0.7 --label-noise 0.3 --label-noise-kind pairs &
cell guard_window=1:explore=0.9 e09gw1-clean61 61 --prune 0.7 --label-noise 0
wait

# Then, with the default built in (no override), seeds 81-83 in the cells of
# unseen-2026-12-04/ (random at the same visits from there), beside a `make test`:
A="--limit 20000 --epochs 8 --threads 1 --seeds 3 --first-seed 81 --policies influence"
$T compare $A --prune 0.7 --label-noise 0.4 --out $OUT/unseen81-sym40 > /dev/null &
$T compare $A --prune 0.7 --label-noise 0 --out $OUT/unseen81-clean > /dev/null
wait
$T compare $A --prune 0.3 --label-noise 0.2 --label-noise-kind pairs --out $OUT/unseen81-pairs20-p03 > /dev/null
