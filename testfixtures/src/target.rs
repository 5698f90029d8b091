//! Where a test's S3 requests go: endpoint, region, bucket and credentials of a running server.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::raw_s3::RawS3;

/// A bucket on a running S3 server, with credentials that can read and write it.
///
/// Every harness hands these out, so a conformance test can take one and not care which
/// server is behind it.
#[derive(Clone)]
pub struct S3Target {
    /// Base URL, e.g. `http://127.0.0.1:39017` (path-style addressing works).
    pub endpoint: String,
    /// The region requests must be signed for.
    pub region: String,
    /// The bucket, created and writable.
    pub bucket: String,
    /// The access key id.
    pub access_key: String,
    /// The secret access key (never printed).
    pub secret_key: SecretString,
}

impl S3Target {
    /// A signed raw requester for this target (see [`RawS3`]).
    pub fn raw_s3(&self) -> RawS3 {
        RawS3::new(
            &self.endpoint,
            &self.region,
            &self.access_key,
            self.secret_key.expose_secret(),
        )
    }

    /// `/<bucket>/<key>`, percent-encoded for [`RawS3::send`].
    pub fn object_path(&self, key: &str) -> String {
        RawS3::object_path(&self.bucket, key)
    }
}

impl fmt::Debug for S3Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Target")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_secret() {
        let target = S3Target {
            endpoint: "http://127.0.0.1:1".into(),
            region: "garage".into(),
            bucket: "b".into(),
            access_key: "GKabc".into(),
            secret_key: SecretString::from("top-secret-value".to_owned()),
        };
        let printed = format!("{target:?}");
        assert!(printed.contains("GKabc"), "{printed}");
        assert!(!printed.contains("top-secret-value"), "{printed}");
        assert_eq!(target.object_path("a b"), "/b/a%20b");
    }
}
