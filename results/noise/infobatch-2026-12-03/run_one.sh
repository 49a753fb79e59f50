#!/usr/bin/env bash
# One `compare` of this folder: run_one.sh OUTROOT FIRST_SEED LABELS (clean, sym20, pairs30):
# InfoBatch at its nominal r = 0.7 (no budget) beside full data and random at the same visits.
cd "$(dirname "$0")/../../.."
T=target/release/thresher-train
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
case $3 in clean) L="--label-noise 0";; sym20) L="--label-noise 0.2";; pairs30) L="--label-noise 0.3 --label-noise-kind pairs";; esac
nice -n 5 $T compare --limit 10000 --test-limit 5000 --epochs 6 --threads 1 --seeds 3 --first-seed $2 --prune 0.7 $L --policies full,infobatch --match-random --out $1/$3-infobatch-r0.7-s$2 > /dev/null 2>&1
