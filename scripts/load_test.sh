#!/usr/bin/env bash
# Load test (issue 15, item 6): CLIENTS concurrent `cryptmed diagnose` processes,
# each of the 113 bundled test records, against one provider and one dealer with
# default limits (64 concurrent sessions), over TLS on loopback. Clients beyond
# the limit are told `busy` and retry with jittered back-off (--retry-for, 120 s).
# Checks that every client succeeds and that every results file equals a
# reference run's; prints the wall time and the provider's peak RSS (VmHWM).
#
# usage: scripts/load_test.sh [CLIENTS]   (default 200; needs a release build)
set -euo pipefail
CLIENTS=${1:-200}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release/cryptmed
RECORDS=$ROOT/testdata/breast_cancer_test.csv
MODEL=$ROOT/models/breast-cancer-relu.onnx
[ -x "$BIN" ] || cargo build --release -p cryptmed --manifest-path "$ROOT/Cargo.toml"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

"$BIN" certs --out "$WORK/certs" --name localhost --name 127.0.0.1 >/dev/null
C=$WORK/certs
DP=$(free_port)
"$BIN" dealer --listen 127.0.0.1:"$DP" --cert "$C/dealer.pem" --key "$C/dealer.key" --ca "$C/ca.pem" \
    --audit-log "$WORK/dealer-audit.jsonl" 2>"$WORK/dealer.log" &
PIDS+=($!)
wait_port "$DP"
PP=$(free_port)
"$BIN" serve --model "$MODEL" --listen 127.0.0.1:"$PP" --dealer localhost:"$DP" \
    --cert "$C/provider.pem" --key "$C/provider.key" --ca "$C/ca.pem" \
    --audit-log "$WORK/provider-audit.jsonl" 2>"$WORK/provider.log" &
PROVIDER=$!
PIDS+=("$PROVIDER")
wait_port "$PP"

client() { # client OUTPUT
    "$BIN" diagnose --server localhost:"$PP" --dealer localhost:"$DP" --ca "$C/ca.pem" \
        --cert "$C/client.pem" --key "$C/client.key" --input "$RECORDS" --ignore-column label \
        --output "$1"
}
client "$WORK/reference.csv" 2>"$WORK/reference.log"

START=$(date +%s.%N)
CLIENT_PIDS=()
for i in $(seq "$CLIENTS"); do
    client "$WORK/out-$i.csv" 2>"$WORK/client-$i.log" &
    CLIENT_PIDS+=($!)
done
FAILED=0
for i in "${!CLIENT_PIDS[@]}"; do
    wait "${CLIENT_PIDS[$i]}" || FAILED=$((FAILED + 1))
done
END=$(date +%s.%N)

WRONG=0
for i in $(seq "$CLIENTS"); do
    cmp -s "$WORK/reference.csv" "$WORK/out-$i.csv" || WRONG=$((WRONG + 1))
done
WAITED=$({ grep -l "trying again" "$WORK"/client-*.log || true; } | wc -l)
RSS=$(awk '/VmHWM/ {print $2, $3}' /proc/"$PROVIDER"/status)
echo "clients: $CLIENTS x $(($(wc -l <"$RECORDS") - 1)) records"
echo "failed: $FAILED; results differing from the reference: $WRONG; clients that waited (busy): $WAITED"
echo "wall time: $(python3 -c "print(round($END - $START, 1))") s; provider peak RSS: $RSS"
echo "audit lines: provider $(wc -l <"$WORK/provider-audit.jsonl"), dealer $(wc -l <"$WORK/dealer-audit.jsonl")"
if [ "$FAILED" -ne 0 ] || [ "$WRONG" -ne 0 ]; then
    for i in $(seq "$CLIENTS"); do grep -h "^error" "$WORK/client-$i.log" || true; done | sort | uniq -c | head
    exit 1
fi
