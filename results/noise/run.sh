#!/usr/bin/env bash
# Regenerates results/noise/ (see README.md here): the guarded defaults, random pruning and full
# data at equal budgets (70 % and 30 % of full data's sample-visits, i.e. 30 % and 70 % pruning)
# on clean labels, 20 % symmetric flips and 30 % class-pair flips (c -> c+1) of Fashion-MNIST,
# 10,000 training and 5,000 test samples, 6 epochs, seeds 31-33. One `compare` per line below,
# exactly the committed folders; JOBS of them run side by side (default 1). The figures of one
# policy do not depend on which other policies share its `compare`.
# The folders under earlier-rule/ came from the previous noise guard (git history, commit
# 0373605); this script does not regenerate them.
set -e
cd "$(dirname "$0")/../.."
T=target/release/thresher-train
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
SIZE="--limit 10000 --test-limit 5000 --epochs 6 --threads 1 --seeds 3 --first-seed 31"
JOBS=${JOBS:-1}
CLEAN="--label-noise 0"
SYM20="--label-noise 0.2"
PAIRS30="--label-noise 0.3 --label-noise-kind pairs"
# bash, not sh: `jobs` inside $(...) lists the script's jobs only in bash (dash lists none,
# so every run would start at once).
run() { # folder budget labels policies; with ONLY set, only the folders it names run
  case " ${ONLY:-$1} " in *" $1 "*) ;; *) return 0 ;; esac
  $T compare $SIZE --budget $2 $3 --policies $4 --out results/noise/$1 > /dev/null &
  while [ "$(jobs -p | wc -l)" -ge "$JOBS" ]; do sleep 5; done
}
run clean-budget0.7-base 0.7 "$CLEAN" full,random
run clean-budget0.7-g1 0.7 "$CLEAN" ucb,epsilon_greedy,el2n
run clean-budget0.7-g2 0.7 "$CLEAN" grand,forgetting,influence
run clean-budget0.3-base 0.3 "$CLEAN" random,ucb
run clean-budget0.3-g1 0.3 "$CLEAN" epsilon_greedy,el2n
run clean-budget0.3-g2 0.3 "$CLEAN" grand,forgetting
run sym20-budget0.7-base 0.7 "$SYM20" full,random
run sym20-budget0.7-g1 0.7 "$SYM20" ucb,epsilon_greedy,el2n
run sym20-budget0.7-g2 0.7 "$SYM20" grand,forgetting,influence
run sym20-budget0.3-base 0.3 "$SYM20" random,ucb
run sym20-budget0.3-g1 0.3 "$SYM20" epsilon_greedy,el2n
run sym20-budget0.3-g2 0.3 "$SYM20" grand,forgetting
run pairs30-budget0.7-base 0.7 "$PAIRS30" full
run pairs30-budget0.7-g1 0.7 "$PAIRS30" random,ucb,epsilon_greedy
run pairs30-budget0.7-g2 0.7 "$PAIRS30" el2n,grand
run pairs30-budget0.3-base 0.3 "$PAIRS30" random
run pairs30-budget0.3-g1 0.3 "$PAIRS30" ucb,epsilon_greedy,el2n
wait
python3 results/noise/summary.py > results/noise/summary.md
