//! A runner for Elasticsearch's own YAML REST tests, pointed at `coffer serve`.
//!
//! The pieces are kept apart so each can be tested without a server:
//! - [`spec`] reads the REST API specs (`api/*.json`, both layouts) and turns an API name plus
//!   parameters into an HTTP request;
//! - [`suite`] parses a YAML test file into sections and steps;
//! - [`value`], [`stash`] and [`assert`] implement response paths, stashing and the assertion
//!   semantics of Elasticsearch's runner (Java regex flavour included);
//! - [`prereq`] decides `skip` / `requires` sections;
//! - [`skiplist`] loads the project's list of tests that cannot pass, with reasons;
//! - [`runner`] executes files over a [`runner::Transport`], wiping the server between tests;
//! - [`server`] starts and stops the real `coffer serve` process.

pub mod assert;
mod error;
pub mod http;
pub mod prereq;
pub mod runner;
pub mod server;
pub mod skiplist;
pub mod spec;
pub mod stash;
pub mod suite;
pub mod value;

pub use error::Error;

/// The Elasticsearch version coffer reports in `GET /`; version-gated tests are judged
/// against it.
pub const SERVER_VERSION: &str = "8.17.0";

use std::path::{Path, PathBuf};

/// The workspace root this crate was built in.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Where the Elasticsearch specs and tests are: `COFFER_ES_YAML_DIR`, else
/// `../shared/conformance/es-yaml` next to the workspace (where CI has them).
pub fn default_es_yaml_dir() -> PathBuf {
    std::env::var_os("COFFER_ES_YAML_DIR").map_or_else(
        || workspace_root().join("../shared/conformance/es-yaml"),
        PathBuf::from,
    )
}

/// The project's skip list, `conformance/skip.yml`.
pub fn default_skip_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("skip.yml")
}
