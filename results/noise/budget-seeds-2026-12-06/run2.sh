#!/usr/bin/env bash
# usage: run2.sh NAME FIRSTSEED SEEDS BUDGET NOISE KIND POLICIES
cd /work/main
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
T=target/release/thresher-train
$T compare --limit 20000 --epochs 8 --budget $4 --threads 1 --seeds $3 --first-seed $2 --policies $7 --label-noise $5 --label-noise-kind $6 --out /tmp/x17/$1 > /tmp/x17/$1.log 2>&1
