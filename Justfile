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
