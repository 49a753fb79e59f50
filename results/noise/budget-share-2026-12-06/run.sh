#!/usr/bin/env bash
# epsilon_greedy and ucb under a budget: the rescaled drawn share (the default before) against
# the share at weight 1 (the default since), on the issue's setting (Fashion-MNIST, first
# 20,000 training samples, whole test set, 8 epochs), clean labels and 20 % symmetric flips
# side by side. Cells a-e ran with the trainer of 004b89f, where a bare `epsilon_greedy` /
# `ucb` was still rescaled; `after` runs the new defaults. Seeds 71-73 at budget 0.3 are in
# ../budget-rules-2026-12-06/tried (e1, e12), and `random` on seeds 91-93 at budget 0.3, against
# which cells a, b and e are read, in its e6 (the runs are deterministic). After `make trainer`.
set -e
cd "$(dirname "$0")/../../.."
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
T=target/release/thresher-train
OUT=results/noise/budget-share-2026-12-06
run() { # name first-seed budget policies
  local args="--limit 20000 --epochs 8 --budget $3 --threads 1 --seeds 3 --first-seed $2 --policies $4"
  $T compare $args --label-noise 0.2 --out $OUT/$1-sym20 > /dev/null &
  $T compare $args --label-noise 0 --out $OUT/$1-clean > /dev/null &
  wait
}
case "${1:-all}" in
  before|all)
    run a 91 0.3 epsilon_greedy,ucb,epsilon_greedy:rescale=false,epsilon_greedy:explore=1:rescale=false
    run b 91 0.3 ucb:rescale=false
    run c 71 0.7 random,epsilon_greedy,epsilon_greedy:rescale=false,ucb,ucb:rescale=false
    run d 91 0.7 random,epsilon_greedy,epsilon_greedy:rescale=false,ucb,ucb:rescale=false
    run e 91 0.3 influence
    ;;&
  after|all)
    run after 71 0.3 epsilon_greedy,ucb
    ;;
esac
