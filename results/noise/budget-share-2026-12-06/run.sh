#!/usr/bin/env bash
# The drawn share under a budget, on the issue's setting (Fashion-MNIST, first 20,000
# training samples, whole test set, 8 epochs), clean labels and 20 % symmetric flips side by
# side. Cells a-e: epsilon_greedy and ucb, the rescaled share (the default before) against the
# share at weight 1 (the default since), with the trainer of 004b89f; `after` runs their new
# defaults. Cells f-o: influence (f before its change, h-k an intermediate build, l-o its
# new defaults). `random`, the equal-visits baseline, comes from ../budget-rules-2026-12-06/tried
# (the runs are deterministic): at budget 0.3 its e1 (seeds 71-73: cells f, h, l, after) and e6
# (91-93: a, b, e, i, m); at budget 0.7 cells c and d here (71-73: j, n; 91-93: k, o). Seeds
# 71-73 of epsilon_greedy/ucb at budget 0.3 are that folder's e1 and e12. After `make trainer`.
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
  influence-before)
    # Trainer of ad8d731: influence's keys `rescale` and `explore` changed nothing at this
    # budget (its share never existed: the never-met samples filled the fixed part).
    run f 71 0.3 influence:rescale=true,influence:explore=0.5:rescale=true
    ;;
  influence-between)
    # An intermediate build, never committed: never-met samples in R, the scoring epochs
    # still uniform cuts, the share at weight 1 by default. The share at weight 1 against
    # the rescaled share.
    run h 71 0.3 influence,influence:rescale=true
    run i 91 0.3 influence,influence:rescale=true
    run j 71 0.7 influence,influence:rescale=true
    run k 91 0.7 influence,influence:rescale=true
    ;;
  influence|all)
    # The trainer of the change: scoring epochs that pass over the data, never-met samples in
    # R, the share rescaled under a budget (the default).
    run l 71 0.3 influence
    run m 91 0.3 influence
    run n 71 0.7 influence
    run o 91 0.7 influence
    ;;&
  unseen|all)
    # After the change, on seeds and noise no rule was chosen on: 30 % class-pair and 40 %
    # symmetric flips, seeds 101-103, budget 0.3, random beside the policies.
    unseen_args="--limit 20000 --epochs 8 --budget 0.3 --threads 1 --seeds 3 --first-seed 101 --policies random,epsilon_greedy,ucb,influence,forgetting"
    $T compare $unseen_args --label-noise 0.3 --label-noise-kind pairs --out $OUT/p-pairs30 > /dev/null &
    $T compare $unseen_args --label-noise 0.4 --out $OUT/p-sym40 > /dev/null &
    wait
    ;;&
  after|all)
    run after 71 0.3 epsilon_greedy,ucb
    ;;
esac
