#!/usr/bin/env bash
# usage: run.sh NAME FIRSTSEED SEEDS BUDGET NOISE POLICIES
cd /work/main
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
T=target/release/thresher-train
OUT=/tmp/x17
$T compare --limit 20000 --epochs 8 --budget $4 --threads 1 --seeds $3 --first-seed $2 --policies $6 --label-noise $5 --out $OUT/$1 > $OUT/$1.log 2>&1
