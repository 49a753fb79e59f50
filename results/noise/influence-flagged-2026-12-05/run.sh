#!/usr/bin/env bash
# influence's default since the eighth session (a drawn sample that looks unlearnable weighs
# 1/2), each cell beside random pruning at the same realised visits (--match-random), in the
# issue's setting (20,000 samples, 8 epochs, nominal prune 0.7 unless said). Two queues side by
# side. After `make trainer` (2026-12-05).
set -e
cd "$(dirname "$0")/../../.."
export LD_LIBRARY_PATH="$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch/lib):$LD_LIBRARY_PATH"
T=target/release/thresher-train
OUT=results/noise/influence-flagged-2026-12-05
B="--limit 20000 --epochs 8 --threads 1 --seeds 3 --policies influence --match-random"
cell() {
    local name=$1
    shift
    $T compare $B "$@" --out $OUT/$name > /dev/null 2>&1
}
(
    cell pairs30-71 --first-seed 71 --prune 0.7 --label-noise 0.3 --label-noise-kind pairs
    cell clean-61 --first-seed 61 --prune 0.7 --label-noise 0
    cell sym20-61 --first-seed 61 --prune 0.7 --label-noise 0.2
    cell pairs20-p03-81 --first-seed 81 --prune 0.3 --label-noise 0.2 --label-noise-kind pairs
) &
(
    cell pairs30-91 --first-seed 91 --prune 0.7 --label-noise 0.3 --label-noise-kind pairs
    cell clean-91 --first-seed 91 --prune 0.7 --label-noise 0
    cell sym40-81 --first-seed 81 --prune 0.7 --label-noise 0.4
) &
wait

# before-pairs30-91/ and before-clean-91/: the same two cells with the rule before (a flagged
# drawn sample at weight 1; trainer of commit 7cc6ffc), for the comparison in
# results/noise/README.md:
#   $T compare $B --first-seed 91 --prune 0.7 --label-noise 0.3 --label-noise-kind pairs --out .../before-pairs30-91
#   $T compare $B --first-seed 91 --prune 0.7 --label-noise 0 --out .../before-clean-91
