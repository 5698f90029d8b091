use std::path::PathBuf;

/// Everything that can go wrong with a keystore. The `Display` texts are the user-facing
/// messages of `coffer keystore` and follow `elasticsearch-keystore` where it has one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// The keystore file does not exist.
    #[error("coffer keystore not found at [{}]. Use 'create' command to create one.", .path.display())]
    NotFound {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The password did not unlock the keystore.
    #[error("Provided keystore password was incorrect")]
    WrongPassword,
    /// The bytes on disk are not a keystore this password wrote: a flipped byte, a truncated
    /// file, or a file that is not a keystore at all.
    #[error("Keystore has been corrupted or tampered with")]
    Corrupted {
        /// Which check failed, for logs and `--verbose`; never includes secret material.
        detail: &'static str,
    },
    /// The file was written by a newer coffer.
    #[error(
        "coffer keystore format version [{found}] is newer than this coffer supports (up to [{supported}]); upgrade coffer"
    )]
    UnsupportedVersion {
        /// The version in the file.
        found: u16,
        /// The newest version this build reads.
        supported: u16,
    },
    /// A setting name outside `[A-Za-z0-9_\-.]+`.
    #[error(
        "Setting name [{name}] does not match the allowed setting name pattern [[A-Za-z0-9_\\-.]+]"
    )]
    InvalidSettingName {
        /// The rejected name (names are not secret).
        name: String,
    },
    /// A setting that is not in the keystore.
    #[error("Setting [{name}] does not exist in the keystore.")]
    SettingMissing {
        /// The missing name.
        name: String,
    },
    /// The keystore would not fit the format's length fields.
    #[error("keystore too large: {0}")]
    TooLarge(&'static str),
    /// The OS keyring could not be used.
    #[error("OS keyring: {0}")]
    Keyring(String),
    /// Reading or writing the file failed.
    #[error("{context} [{}]: {source}", .path.display())]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl KeystoreError {
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            context,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupted(detail: &'static str) -> Self {
        Self::Corrupted { detail }
    }
}
