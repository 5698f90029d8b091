use std::path::PathBuf;

/// Everything that can go wrong while loading tests or talking to the server.
///
/// Test *failures* are not errors: they are reported as outcomes by the runner. These are the
/// problems that stop a file (or the whole run) from being executed at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("reading [{}]: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An API spec is malformed.
    #[error("API spec [{file}]: {message}")]
    Spec {
        /// The spec file (or API name).
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A YAML test file is malformed.
    #[error("test file [{file}]: {message}")]
    Suite {
        /// The test file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The skip list is malformed.
    #[error("skip list [{}]: {message}", path.display())]
    SkipList {
        /// The skip list file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A `do` step names a parameter the API does not take, or misses a required one. This is
    /// what `catch: param` expects.
    #[error("{0}")]
    Param(String),
    /// A `do` step names an API that has no spec.
    #[error("API [{0}] has no spec in the api/ directory")]
    UnknownApi(String),
    /// The HTTP exchange failed (connection refused, timeout, ...).
    #[error("HTTP {method} {url}: {message}")]
    Http {
        /// Request method.
        method: String,
        /// Request URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// The server process could not be started or stopped.
    #[error("coffer serve: {0}")]
    Server(String),
}
