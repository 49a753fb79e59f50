#!/bin/sh
# Regenerates results/noise/ (see README.md here): every policy at the same budget (70 % and
# 30 % of full data's sample-visits, i.e. 30 % and 70 % pruning) on clean labels, 20 %
# symmetrically flipped labels and 30 % class-pair flips (c -> c+1), Fashion-MNIST, 10,000
# training and 5,000 test samples, 6 epochs, seeds 31-33. Each setting is split into three
# `compare` runs (baselines; ε-greedy, UCB, EL2N; GraNd, forgetting, influence) so that they
# can run side by side on a small machine (JOBS at a time, default 1); the figures of one
# policy do not depend on which other policies share its `compare`.
# The folders under earlier-rule/ came from the previous noise guard (git history, commit
# 0373605); this script does not regenerate them.
set -e
cd "$(dirname "$0")/../.."
T=target/release/thresher-train
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
SIZE="--limit 10000 --test-limit 5000 --epochs 6 --threads 1 --seeds 3 --first-seed 31"
JOBS=${JOBS:-1}
run() { # rate kind tag budget policies part
  $T compare $SIZE --budget $4 --label-noise $1 --label-noise-kind $2 --policies $5 \
    --out results/noise/$3-budget$4-$6 > /dev/null
}
for spec in 0:symmetric:clean 0.2:symmetric:sym20 0.3:pairs:pairs30; do
  rate=${spec%%:*}; rest=${spec#*:}; kind=${rest%%:*}; tag=${rest#*:}
  for b in 0.7 0.3; do
    base=random; [ $b = 0.7 ] && base=full,random
    for part in "$base base" "epsilon_greedy,ucb,el2n g1" "grand,forgetting,influence g2"; do
      run $rate $kind $tag $b ${part% *} ${part#* } &
      while [ "$(jobs -p | wc -l)" -ge "$JOBS" ]; do sleep 5; done
    done
  done
done
wait
python3 results/noise/summary.py > results/noise/summary.md
