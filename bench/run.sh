#!/usr/bin/env bash
# `just bench` (full) and `just bench-quick` (quick): installs what the benchmark needs on a
# Debian machine, builds the release binaries, runs the end-to-end comparison with restic and
# rclone, the criterion microbenchmarks and the API-at-scale benchmark, and regenerates
# docs/benchmarks.md. See bench/methodology.md for the environment variables.
set -euo pipefail
mode=${1:-full}
cd "$(dirname "$0")/.."

case "$mode" in
full)
    rounds=${COFFER_BENCH_ROUNDS:-3}
    size=${COFFER_BENCH_SIZE_MIB:-1024}
    files=${COFFER_BENCH_SMALL_FILES:-20000}
    scale=${COFFER_BENCH_SCALE_MIB:-4096}
    label=bench
    criterion_args=()
    ;;
quick)
    rounds=${COFFER_BENCH_ROUNDS:-2}
    size=${COFFER_BENCH_SIZE_MIB:-256}
    files=${COFFER_BENCH_SMALL_FILES:-2000}
    scale=${COFFER_BENCH_SCALE_MIB:-0}
    label=bench-quick
    criterion_args=(--warm-up-time 1 --measurement-time 2)
    ;;
*)
    echo "usage: $0 full|quick" >&2
    exit 64
    ;;
esac

# Tools from Debian's packages: restic and rclone are what is compared, python3 runs the
# dataset generator, GNU time reports restic's and rclone's peak RSS.
missing=()
command -v restic >/dev/null || missing+=(restic)
command -v rclone >/dev/null || missing+=(rclone)
command -v python3 >/dev/null || missing+=(python3)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    echo "bench: installing ${missing[*]} from Debian's packages" >&2
    "${sudo[@]}" apt-get update
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y "${missing[@]}"
fi
restic_version=$(restic version)
echo "bench: $restic_version" >&2
echo "bench: $(rclone version | head -n1)" >&2
echo "bench: $(python3 --version)" >&2
case "$restic_version" in
"restic 0.14."*) ;;
*) echo "bench: warning: the targets were set against restic 0.14; this is: $restic_version" >&2 ;;
esac

target=$(realpath -m "${CARGO_TARGET_DIR:-target}")
out=$(realpath -m "${COFFER_BENCH_OUT:-target/bench}")
export COFFER_BENCH_OUT="$out"
mkdir -p "$out"

cargo build --release -p coffer -p coffer-bench
"$target/release/coffer-bench" run --label "$label" --coffer "$target/release/coffer" \
    --rounds "$rounds" --size-mib "$size" --small-files "$files" --scale-mib "$scale"

# The microbenchmarks belong to their crates; a missing or failing one is reported as not run.
rm -f "$out/micro.status" "$out/api-scale.status" "$out/api-scale.json"
touch "$out/micro.started"
if cargo bench -p coffer-repository --bench hot_path -- "${criterion_args[@]}"; then
    echo ok >"$out/micro.status"
else
    echo "failed (exit $?)" >"$out/micro.status"
fi
if cargo bench -p coffer-api --bench api_scale; then
    echo ok >"$out/api-scale.status"
else
    echo "failed (exit $?)" >"$out/api-scale.status"
fi

"$target/release/coffer-bench" report --out "$out" --criterion "$target/criterion" \
    --doc docs/benchmarks.md
