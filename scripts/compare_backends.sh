#!/usr/bin/env bash
# Measures both comparison backends side by side (issue 12): every benchmark
# network on LAN and WAN (40 ms, 100 Mbit/s between provider and client),
# batch 1 for latency and batches of 16 and 64 for throughput, then writes
# results/comparison.json, results/latency-lan-wan-backends.svg and
# results/backends-bytes.svg (online and dealer bytes per record).
#
#   scripts/compare_backends.sh                 # run (about 20 minutes), then render
#   scripts/compare_backends.sh --render-only   # re-render from results/comparison.json
#
# minionn-cifar under FSS runs batch 1 only: its keys are 0.9 GB per record,
# so a batch of 16 streams 14 GB from the dealer and a batch of 64 would
# hold one 64-record step of several GB per process.
set -euo pipefail
cd "$(dirname "$0")/.."

repeats=${REPEATS:-5}
batch_repeats=${BATCH_REPEATS:-2}
cargo build --release --locked -p cryptmed
bin=./target/release/cryptmed
mkdir -p results
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ "${1:-}" != "--render-only" ]; then
  for net in secureml-mlp chameleon-cnn minionn-mnist securenn-lenet minionn-cifar medical-mlp; do
    for cmp in ppa fss; do
      br=$batch_repeats
      if [ "$cmp" = fss ] && [ "$net" = minionn-cifar ]; then br=0; fi
      echo "== $net $cmp" >&2
      "$bin" bench --network "$net" --comparison "$cmp" --repeats "$repeats" \
        --batch-repeats "$br" --json "$work/$net-$cmp.json" > /dev/null
    done
  done
  python3 - "$work" <<'PY'
import glob, json, sys
rows = []
for f in sorted(glob.glob(sys.argv[1] + "/*.json")):
    rows += json.load(open(f))
order = ["secureml-mlp", "chameleon-cnn", "minionn-mnist", "securenn-lenet", "minionn-cifar", "medical-mlp"]
rows.sort(key=lambda r: (order.index(r["network"]), r["comparison"] != "ppa", r["profile"], r["batch"]))
json.dump(rows, open("results/comparison.json", "w"), indent=2)
PY
fi
"$bin" bench --from results/comparison.json --plot "$work/plots" > /dev/null
cp "$work/plots/latency-lan-wan.svg" results/latency-lan-wan-backends.svg
cp "$work/plots/backends-bytes.svg" results/backends-bytes.svg
"$bin" bench --from results/comparison.json --markdown
