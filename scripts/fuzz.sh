#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 60) on
# nightly Rust (`cargo install cargo-fuzz` once). The seed corpora are the
# bundled models and records; crashes land in fuzz/artifacts/TARGET/.
#
# usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
SECONDS_EACH=${1:-60}
shift || true
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT/fuzz"
if ! cargo +nightly --version >/dev/null 2>&1 || ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: needs nightly Rust and cargo-fuzz (rustup toolchain install nightly; cargo install cargo-fuzz)" >&2
    exit 3
fi
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || mapfile -t TARGETS < <(cargo +nightly fuzz list)

seed() { # seed TARGET FILES...
    local dir=corpus/$1
    shift
    mkdir -p "$dir"
    for f in "$@"; do [ -f "$f" ] && cp -n "$f" "$dir/" || true; done
}
T=("$ROOT/testdata" "$ROOT/crates/input/tests/fixtures")
seed onnx_import "$ROOT"/models/*.onnx
seed read_csv $(find "${T[@]}" -name '*.csv' | head -20)
seed read_npy $(find "${T[@]}" -name '*.npy' | head -20)
seed read_idx $(find "${T[@]}" -name '*idx*' | head -20)
# The image target's first byte picks the decoder: 0 PNG, 1 JPEG, 2 DICOM.
mkdir -p corpus/read_image
for f in $(find "${T[@]}" \( -name '*.png' -o -name '*.jpg' -o -name '*.dcm' \) | head -30); do
    case $f in *.png) b='\x00' ;; *.jpg) b='\x01' ;; *) b='\x02' ;; esac
    { printf "$b"; cat "$f"; } > "corpus/read_image/seed-$(basename "$f")"
done
mkdir -p corpus/frame_decoder corpus/validate_architecture

FAILED=()
for t in "${TARGETS[@]}"; do
    echo "== $t: ${SECONDS_EACH}s"
    if ! cargo +nightly fuzz run "$t" -- -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -max_len=1048576; then
        FAILED+=("$t")
    fi
done
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "fuzz.sh: crashes in ${FAILED[*]} (see fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz.sh: ${#TARGETS[@]} targets, ${SECONDS_EACH}s each, no crash"
