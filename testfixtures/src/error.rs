//! The error of the server harnesses ([`crate::garage`], [`crate::ceph`]) and of the dataset
//! generator ([`crate::dataset`]).
//!
//! Every variant carries what an engineer needs to fix the machine without re-running with
//! more logging: the command that failed and its output, the tail of the server's log, or the
//! exact command to install a missing server by hand.

use std::time::Duration;

use crate::dataset::ManifestDiff;

/// Why a harness could not start a server, or a dataset operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// A server binary is missing and the harness could not install it.
    #[error(
        "{tool} is not available and could not be installed: {reason}\nInstall it by hand:\n    {how}"
    )]
    Install {
        /// The server (`garage 2.5.0`, `ceph radosgw`).
        tool: String,
        /// What went wrong, with the tail of the installer's output.
        reason: String,
        /// The exact shell command that installs it.
        how: String,
    },
    /// A filesystem or process-spawning operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A command-line step (`garage layout apply`, `ceph osd new`, …) failed or timed out.
    #[error("`{command}` failed: {status}\n{output}")]
    Command {
        /// The command line, as run.
        command: String,
        /// The exit status, or `timed out after …`.
        status: String,
        /// Its stdout and stderr.
        output: String,
    },
    /// A server process did not become ready in time.
    #[error("{what} was not ready after {waited:?}\n--- logs ---\n{logs}")]
    Timeout {
        /// The server or daemon.
        what: String,
        /// How long the harness waited.
        waited: Duration,
        /// The tails of the relevant logs.
        logs: String,
    },
    /// A server process exited while the harness was starting it.
    #[error("{what} exited unexpectedly ({status})\n--- logs ---\n{logs}")]
    Exited {
        /// The server or daemon.
        what: String,
        /// Its exit status.
        status: String,
        /// The tails of the relevant logs.
        logs: String,
    },
    /// An S3 request of the harness itself (bucket creation, readiness probe) failed.
    #[error("{context}: {source}")]
    S3 {
        /// What the harness was doing.
        context: String,
        /// The transport or signing error.
        #[source]
        source: Box<HarnessError>,
    },
    /// An S3 request of the harness got an unexpected answer.
    #[error("{context}: HTTP {status}: {body}")]
    S3Status {
        /// What the harness was doing.
        context: String,
        /// The HTTP status.
        status: u16,
        /// The response body, lossily decoded.
        body: String,
    },
    /// A manifest text could not be parsed.
    #[error("manifest line {line} is not `sha256 size path`: {text:?}")]
    ManifestSyntax {
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },
    /// Two manifests that should be identical differ.
    #[error("the manifests differ:\n{0}")]
    ManifestMismatch(Box<ManifestDiff>),
    // `raw_s3` request failures (see `RawS3::send`).
    /// The request could not be signed (bad URI, header value, …).
    #[error("cannot sign the request: {0}")]
    Sign(String),
    /// The connection failed or was reset before a response head arrived.
    #[error("transport error before the response: {0}")]
    Transport(#[source] reqwest::Error),
    /// The response head arrived, but the body failed part-way (truncated or reset).
    #[error("response body failed after {} bytes (status {status}): {source}", received.len())]
    Body {
        /// The status of the response head.
        status: u16,
        /// The headers of the response head.
        headers: Vec<(String, String)>,
        /// The bytes received before the failure.
        received: Vec<u8>,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a status the helper's caller did not expect.
    #[error("unexpected status {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The body, lossily decoded.
        body: String,
    },
}

impl HarnessError {
    /// An [`HarnessError::Io`] with a context.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether the failure looks like a port taken by someone else between the harness
    /// choosing it and the server binding it, in which case starting again on new ports helps.
    pub(crate) fn is_port_race(&self) -> bool {
        let text = match self {
            Self::Exited { logs, .. } | Self::Timeout { logs, .. } => logs,
            Self::Command { output, .. } => output,
            _ => return false,
        };
        text.contains("Address already in use")
    }
}

/// The result of harness and dataset operations.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_races_are_recognised_from_logs() {
        let race = HarnessError::Exited {
            what: "garage".into(),
            status: "exit status: 1".into(),
            logs: "Error: Address already in use (os error 98)".into(),
        };
        assert!(race.is_port_race());
        let other = HarnessError::Exited {
            what: "garage".into(),
            status: "exit status: 1".into(),
            logs: "Error: invalid config".into(),
        };
        assert!(!other.is_port_race());
    }

    #[test]
    fn install_errors_say_how_to_install() {
        let e = HarnessError::Install {
            tool: "ceph radosgw".into(),
            reason: "not root".into(),
            how: "sudo apt-get install -y radosgw".into(),
        };
        let text = e.to_string();
        assert!(text.contains("Install it by hand"), "{text}");
        assert!(text.contains("sudo apt-get install -y radosgw"), "{text}");
    }
}
