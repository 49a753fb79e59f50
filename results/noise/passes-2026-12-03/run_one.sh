#!/usr/bin/env bash
# One `compare` of this folder: run_one.sh OUTROOT FIRST_SEED BUDGET LABELS POLICIES
# (LABELS clean, sym20 or pairs30; POLICIES comma-separated), e.g.
#   results/noise/passes-2026-12-03/run_one.sh /tmp/out 41 0.3 clean ucb,epsilon_greedy
cd "$(dirname "$0")/../../.."
T=target/release/thresher-train
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
case $4 in clean) L="--label-noise 0";; sym20) L="--label-noise 0.2";; pairs30) L="--label-noise 0.3 --label-noise-kind pairs";; esac
$T compare --limit 10000 --test-limit 5000 --epochs 6 --threads 1 --seeds 3 --first-seed $2 --budget $3 $L --policies $5 --out $1/$4-budget$3-${5//,/_}-s$2 > /dev/null 2>&1
