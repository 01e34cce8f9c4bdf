#!/usr/bin/env bash
# Secure evaluation of every committed model on its test split, for models/README.md:
# label output (secure argmax: accuracy, agreement, bytes, rounds) into bench-out/eval/M.json and
# logits and probabilities output (fidelity: logit and probability error against the f64 reference)
# into bench-out/eval/logits/M.json and bench-out/eval/probabilities/M.json.
# Needs the prepared data sets (python3 scripts/prepare_data.py). MNIST_LIMIT (default: all 10000)
# limits the MNIST and Fashion-MNIST test records; REVEALS (default: label logits probabilities) picks
# the runs. Then: python3 python/models_table.py
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p cryptmed
bin=target/release/cryptmed
mkdir -p bench-out/eval/logits bench-out/eval/probabilities
for f in ${@:-models/*.onnx}; do
  m=$(basename "$f" .onnx)
  case $m in
    breast-cancer*) ds=breast-cancer batch=8 ;; diabetes*) ds=diabetes batch=8 ;;
    heart-disease*) ds=heart-disease batch=8 ;; kidney*) ds=kidney batch=8 ;;
    fashion*) ds=fashion-mnist batch=16 ;; *) ds=mnist batch=16 ;;
  esac
  limit=()
  if [[ $ds == *mnist && -n ${MNIST_LIMIT:-} ]]; then limit=(--limit "$MNIST_LIMIT"); fi
  for reveal in ${REVEALS:-label logits probabilities}; do
    out=bench-out/eval/$m.json
    [[ $reveal != label ]] && out=bench-out/eval/$reveal/$m.json
    if ! $bin eval --model "$f" --data $ds --batch $batch --reveal $reveal "${limit[@]}" --json > "$out" 2> "${out%.json}.err"; then
      echo "$m ($reveal): failed, see ${out%.json}.err"; rm -f "$out"; continue
    fi
  done
  echo "$m done"
done
