#!/usr/bin/env bash
# Builds coffer's cargo-fuzz targets and runs each for a bounded time (docs/fuzzing.md).
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 25 s, every target)
#
# Exits non-zero on the first crash, leak of the allocation cap, or timeout; libFuzzer saves
# the input under fuzz/artifacts/<target>/ and prints how to reproduce it. Works with the
# stable toolchain: cargo-fuzz passes a few -Z flags, which RUSTC_BOOTSTRAP=1 lets stable
# accept, and `--sanitizer none` needs no nightly sanitizer runtime (the code under test is
# `unsafe`-free Rust; overflow checks and debug assertions stay on).
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-25}"
shift || true
all=(metadata pack_index s3_xml keystore api_params api_names)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi

CARGO_FUZZ_VERSION=0.13.2
tools="${COFFER_TOOLS_DIR:-$HOME/.cache/coffer/tools}/cargo-fuzz-$CARGO_FUZZ_VERSION"
if ! "$tools/bin/cargo-fuzz" --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "installing cargo-fuzz $CARGO_FUZZ_VERSION into $tools"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" --root "$tools"
fi
export PATH="$tools/bin:$PATH"
export RUSTC_BOOTSTRAP=1
# Outside the clone by default so that CI runs on one machine rebuild only what changed.
target_dir="${COFFER_FUZZ_TARGET_DIR:-$HOME/.cache/coffer/fuzz-target}"
fuzz=(--sanitizer none --target-dir "$target_dir")

t0=$(date +%s)
cargo fuzz build "${fuzz[@]}"
echo "fuzz targets built in $(( $(date +%s) - t0 )) s"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t"
    echo "=== fuzz $t for ${secs}s"
    # New inputs go to the scratch corpus; the committed seeds are read only.
    log="$scratch/$t.log"
    status=0
    cargo fuzz run "${fuzz[@]}" "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|^#[0-9]+ +DONE' "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$log" >&2
        echo "fuzz target $t failed (exit $status); the input is under fuzz/artifacts/$t/" >&2
        exit "$status"
    fi
done
echo "fuzzing done in $(( $(date +%s) - t0 )) s"
