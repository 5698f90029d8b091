use std::fmt;

use secrecy::{ExposeSecret, SecretBox, SecretString};

use crate::KeystoreError;

/// One secure setting's value. Both variants zeroize their memory on drop, and neither
/// `Debug` nor any other formatting trait ever shows the value.
pub enum SecureSetting {
    /// A UTF-8 string, added with `coffer keystore add`.
    String(SecretString),
    /// Arbitrary bytes, added with `coffer keystore add-file` (a CA bundle, say).
    File(SecretBox<[u8]>),
}

impl SecureSetting {
    /// A string setting.
    pub fn string(value: impl Into<String>) -> Self {
        Self::String(SecretString::from(value.into()))
    }

    /// A file setting holding these bytes.
    pub fn file(bytes: Vec<u8>) -> Self {
        Self::File(SecretBox::new(bytes.into_boxed_slice()))
    }

    /// The value's bytes. The caller is responsible for not leaking them.
    pub fn expose_bytes(&self) -> &[u8] {
        match self {
            Self::String(s) => s.expose_secret().as_bytes(),
            Self::File(b) => b.expose_secret(),
        }
    }

    /// The value as a string, when it is one (a file setting that happens to be UTF-8 also
    /// qualifies, so a PEM bundle added with `add-file` can be read as text).
    pub fn expose_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s.expose_secret()),
            Self::File(b) => std::str::from_utf8(b.expose_secret()).ok(),
        }
    }

    /// Whether this setting was added as a file.
    pub fn is_file(&self) -> bool {
        matches!(self, Self::File(_))
    }

    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Self::String(s) => Self::String(SecretString::from(s.expose_secret().to_owned())),
            Self::File(b) => Self::file(b.expose_secret().to_vec()),
        }
    }
}

impl fmt::Debug for SecureSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(_) => f.write_str("SecureSetting::String(<redacted>)"),
            Self::File(_) => f.write_str("SecureSetting::File(<redacted>)"),
        }
    }
}

/// Checks a setting name against `[A-Za-z0-9_\-.]+`, the pattern `elasticsearch-keystore`
/// enforces, so names stay safe to print, to log and to use as keys in `coffer.yml`.
pub fn validate_setting_name(name: &str) -> Result<(), KeystoreError> {
    let ok = !name.is_empty()
        && u16::try_from(name.len()).is_ok()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(KeystoreError::InvalidSettingName {
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = SecureSetting::string("hunter2-very-secret");
        let f = SecureSetting::file(b"-----BEGIN CERTIFICATE----- secretbytes".to_vec());
        for shown in [
            format!("{s:?}"),
            format!("{s:#?}"),
            format!("{f:?}"),
            format!("{f:#?}"),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(!shown.contains("secretbytes"), "{shown}");
            assert!(shown.contains("redacted"), "{shown}");
        }
    }

    #[test]
    fn setting_names() {
        for good in ["s3.client.default.access_key", "a", "A-Z_0.9", "x..y"] {
            validate_setting_name(good).unwrap();
        }
        for bad in ["", "a b", "a/b", "é", "a=b", "a\nb", "a*"] {
            assert!(matches!(
                validate_setting_name(bad),
                Err(KeystoreError::InvalidSettingName { .. })
            ));
        }
    }
}
