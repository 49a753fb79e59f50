#!/usr/bin/env bash
# The variants tried, by config keys, with the trainer of commit 4145b93 (before the change):
# each experiment eN runs its policies on clean labels and on 20 % symmetric flips, side by
# side. e1-e5 on seeds 71-73 (random is in e1 only; the runs are deterministic, so e2-e5 are
# read against e1's random), e6-e7 on unseen seeds 91-93 (random in e6). After `make trainer`.
set -e
cd "$(dirname "$0")/../../../.."
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
T=target/release/thresher-train
OUT=results/noise/budget-rules-2026-12-06/tried
run() { # name first-seed policies
  local args="--limit 20000 --epochs 8 --budget 0.3 --threads 1 --seeds 3 --first-seed $2 --policies $3"
  $T compare $args --label-noise 0.2 --out $OUT/$1-sym20 > /dev/null &
  $T compare $args --label-noise 0 --out $OUT/$1-clean > /dev/null &
  wait
}
run e1 71 random,epsilon_greedy,epsilon_greedy:rescale=false,epsilon_greedy:explore=0.8,ucb:rescale=false,forgetting:rescale=true,forgetting:explore=0.8
run e2 71 random:rescale=true,forgetting:score_epochs=6,el2n:score_epochs=6,forgetting:score_epochs=4
run e3 71 forgetting:guard_window=1:score_epochs=2,forgetting:guard_window=1
run e4 71 epsilon_greedy:guard_window=1,ucb:guard_window=1
run e5 71 infobatch:anneal=1,infobatch:anneal=1:prune=0.8
run e6 91 random,forgetting,forgetting:rescale=true
run e7 91 infobatch,infobatch:anneal=1
run e8 91 full
# After the change (trainer of 146f83f): budget 0.7, forgetting's new default (rescaled) beside
# the old one, and InfoBatch (its annealing epoch is still paid at this budget).
run07() {
  local args="--limit 20000 --epochs 8 --budget 0.7 --threads 1 --seeds 3 --first-seed 71 --policies $2"
  $T compare $args --label-noise 0.2 --out $OUT/$1-sym20 > /dev/null &
  $T compare $args --label-noise 0 --out $OUT/$1-clean > /dev/null &
  wait
}
run07 e9 random,forgetting,forgetting:rescale=false,infobatch
run e10 71 epsilon_greedy:explore=0.2,epsilon_greedy:explore=0.2:rescale=false,ucb:explore=0.2
run e12 71 epsilon_greedy:explore=1:rescale=false,epsilon_greedy:explore=1
