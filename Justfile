# coffer's developer recipes. `cargo test --workspace` needs none of them; CI runs .ci/run.

# Run the whole test suite (the README's test command).
test:
    cargo test --workspace

# Formatting and lints exactly as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Everything CI runs.
ci:
    bash .ci/run

# Run the service with the default configuration directory (./config).
serve:
    cargo run --release -- serve

# Elasticsearch's YAML REST tests against coffer serve (docs/conformance.md). The specs and
# tests come from COFFER_ES_YAML_DIR (default ../shared/conformance/es-yaml). A filter runs
# some of them: `just conformance snapshot.get`.
conformance *ARGS:
    cargo build -p coffer --bin coffer
    cargo run -p coffer-conformance -- {{ARGS}}

# coffer against restic and rclone on the same Garage, plus the microbenchmarks; regenerates
# docs/benchmarks.md (1 GiB, 20,000 small files, 3 rounds, the 4 GiB RSS run). Installs
# restic, rclone, python3 and GNU time from Debian's packages when missing.
bench:
    bash bench/run.sh full

# The same at 256 MiB and 2,000 small files, 2 rounds, no 4 GiB run.
bench-quick:
    bash bench/run.sh quick

# Fuzz one target (metadata, pack_index, s3_xml, keystore, api_params, api_names) for
# SECONDS with cargo-fuzz on the stable toolchain (docs/fuzzing.md): `just fuzz s3_xml 600`.
fuzz TARGET SECONDS="300":
    bash fuzz/run.sh {{SECONDS}} {{TARGET}}
