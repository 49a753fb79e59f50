#!/bin/sh
# Regenerates results/noise/: every policy at the same budget (70 % and 30 % of full data's
# sample-visits, i.e. 30 % and 70 % pruning) on clean and on 20 % symmetrically flipped
# Fashion-MNIST labels, plus the papers' exact rules (noise_guard=false) for the record, and
# one nominal-settings run against random at each run's realised visits. Sized for a shared
# 2-core machine: see README.md here for the sizes and the load.
set -e
cd "$(dirname "$0")/../.."
T=target/release/thresher-train
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
SIZE="--limit 4000 --test-limit 2000 --epochs 5 --threads 1 --seeds 1 --first-seed 11"
GUARDED=full,random,infobatch,epsilon_greedy,ucb,el2n,grand,forgetting,influence
PAPER=ucb:noise_guard=false,el2n:noise_guard=false,epsilon_greedy:noise_guard=false,forgetting:noise_guard=false
for noise in 0 0.2; do
  tag=$([ "$noise" = 0 ] && echo clean || echo noisy20)
  for b in 0.7 0.3; do
    $T compare $SIZE --budget $b --label-noise $noise --policies $GUARDED,$PAPER \
      --out results/noise/$tag-budget$b
  done
done
# Nominal settings (prune 0.7, no budget), each against random at its own realised visits.
$T compare $SIZE --prune 0.7 --label-noise 0.2 --match-random \
  --policies full,infobatch,epsilon_greedy,ucb,el2n,ucb:noise_guard=false,el2n:noise_guard=false \
  --out results/noise/noisy20-nominal0.7
