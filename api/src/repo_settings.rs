//! Repository settings: the names and value formats Elasticsearch accepts for `fs` and `s3`,
//! checked at registration so that a typo is a 400 naming the setting, never ignored.

use std::collections::BTreeMap;

use coffer_repository::RepositorySettings;
use coffer_repository::chunker::ChunkerParams;

use crate::error::{ApiResult, EsError};

const COMMON: &[&str] = &[
    "compress",
    "chunk_size",
    "readonly",
    "read_only",
    "max_snapshot_bytes_per_sec",
    "max_restore_bytes_per_sec",
];
const FS: &[&str] = &["location"];
const S3: &[&str] = &[
    "bucket",
    "client",
    "base_path",
    "buffer_size",
    "server_side_encryption",
    "storage_class",
    "canned_acl",
    "delete_objects_max_size",
];
const STORAGE_CLASSES: &[&str] = &[
    "standard",
    "reduced_redundancy",
    "standard_ia",
    "onezone_ia",
    "intelligent_tiering",
];
const CANNED_ACLS: &[&str] = &[
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "log-delivery-write",
    "bucket-owner-read",
    "bucket-owner-full-control",
];

/// Parses a byte size such as `1mb`, `512kb`, `1gb` or a plain number of bytes.
pub fn parse_byte_size(key: &str, v: &str) -> ApiResult<u64> {
    let s = v.trim().to_ascii_lowercase();
    let (num, mult): (&str, u64) = [
        ("pb", 1u64 << 50),
        ("tb", 1 << 40),
        ("gb", 1 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("p", 1 << 50),
        ("t", 1 << 40),
        ("g", 1 << 30),
        ("m", 1 << 20),
        ("k", 1 << 10),
        ("b", 1),
    ]
    .iter()
    .find_map(|(suffix, m)| s.strip_suffix(suffix).map(|n| (n, *m)))
    .unwrap_or((s.as_str(), 1));
    let bad = || {
        EsError::parse(format!(
            "failed to parse setting [{key}] with value [{v}] as a size in bytes: unit is missing or unrecognized"
        ))
    };
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    if !(0.0..=9.0e18).contains(&n) {
        return Err(bad());
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    Ok((n * mult as f64) as u64)
}

fn parse_bool(key: &str, v: &str) -> ApiResult<bool> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(EsError::illegal_argument(format!(
            "Failed to parse value [{v}] as only [true] or [false] are allowed. (setting [{key}])"
        ))),
    }
}

/// Validates `settings` for a repository of `kind` and derives the layer's settings.
pub fn parse(kind: &str, settings: &BTreeMap<String, String>) -> ApiResult<RepositorySettings> {
    let specific: &[&str] = match kind {
        "fs" => FS,
        "s3" => S3,
        other => {
            return Err(EsError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "repository_exception",
                format!("repository type [{other}] does not exist"),
            ));
        }
    };
    let mut out = RepositorySettings::default();
    for (k, v) in settings {
        match k.as_str() {
            "access_key" | "secret_key" | "session_token" => {
                return Err(EsError::illegal_argument(format!(
                    "Setting [{k}] is insecure, use the keystore instead: coffer keystore add s3.client.<client>.{k}"
                )));
            }
            "compress" => out.compress = parse_bool(k, v)?,
            "readonly" | "read_only" => out.readonly = parse_bool(k, v)?,
            "chunk_size" => {
                let n = parse_byte_size(k, v)?;
                let n = u32::try_from(n).map_err(|_| {
                    EsError::illegal_argument(format!(
                        "failed to parse value [{v}] for setting [{k}], must be <= [4gb]"
                    ))
                })?;
                // Content-defined chunks average this size; the chunker has its own limits.
                ChunkerParams::from_average(n as usize).map_err(|e| {
                    EsError::illegal_argument(format!("invalid value [{v}] for setting [{k}]: {e}"))
                })?;
                out.chunk_size = n;
            }
            "max_snapshot_bytes_per_sec" => {
                out.max_snapshot_bytes_per_sec = Some(parse_byte_size(k, v)?).filter(|n| *n > 0);
            }
            "max_restore_bytes_per_sec" => {
                out.max_restore_bytes_per_sec = Some(parse_byte_size(k, v)?).filter(|n| *n > 0);
            }
            "location" | "client" => {}
            "base_path" => {
                // Keys are `<base_path>/<key>` in a URL path, where `..` segments would be
                // resolved (out of the bucket, with path-style addressing).
                let trimmed = v.trim_matches('/');
                if v.chars().any(char::is_control)
                    || (!trimmed.is_empty()
                        && trimmed
                            .split('/')
                            .any(|s| s.is_empty() || s == "." || s == ".."))
                {
                    return Err(EsError::illegal_argument(format!(
                        "invalid [base_path] [{v}]: it must be a relative path without empty, '.' or '..' segments"
                    )));
                }
            }
            "bucket" => {
                if v.is_empty() {
                    return Err(EsError::illegal_argument("[bucket] must not be empty"));
                }
            }
            "buffer_size" => {
                let n = parse_byte_size(k, v)?;
                if n < 5 << 20 {
                    return Err(EsError::illegal_argument(format!(
                        "failed to parse value [{v}] for setting [{k}], must be >= [5mb]"
                    )));
                }
            }
            // coffer's S3 writes do not send these headers yet. Accepting a value that asks
            // for something other than the default would promise encryption, a storage class
            // or an ACL the objects do not get, so only the defaults are accepted.
            "server_side_encryption" => {
                if parse_bool(k, v)? {
                    return Err(EsError::illegal_argument(
                        "setting [server_side_encryption] is not supported by this version of coffer: \
                         objects would be stored without it. Enable default encryption on the bucket instead",
                    ));
                }
            }
            "storage_class" => {
                if !STORAGE_CLASSES.contains(&v.to_ascii_lowercase().as_str()) {
                    return Err(EsError::illegal_argument(format!(
                        "`{v}` is not a valid S3 Storage Class."
                    )));
                }
                if !v.eq_ignore_ascii_case("standard") {
                    return Err(EsError::illegal_argument(format!(
                        "setting [storage_class] [{v}] is not supported by this version of coffer: \
                         objects are stored in the bucket's default class. Use a bucket lifecycle rule instead"
                    )));
                }
            }
            "canned_acl" => {
                if !CANNED_ACLS.contains(&v.as_str()) {
                    return Err(EsError::illegal_argument(format!(
                        "cannedACL is not valid: [{v}]"
                    )));
                }
                if v != "private" {
                    return Err(EsError::illegal_argument(format!(
                        "setting [canned_acl] [{v}] is not supported by this version of coffer: \
                         objects are written with the bucket's default (private) ACL"
                    )));
                }
            }
            "delete_objects_max_size" => {
                let n: u32 = v.parse().map_err(|_| {
                    EsError::illegal_argument(format!(
                        "Failed to parse value [{v}] for setting [{k}]"
                    ))
                })?;
                if !(1..=1000).contains(&n) {
                    return Err(EsError::illegal_argument(format!(
                        "Failed to parse value [{v}] for setting [{k}] must be between 1 and 1000"
                    )));
                }
            }
            _ => {
                return Err(EsError::illegal_argument(format!(
                    "unknown setting [{k}] for a repository of type [{kind}]; known settings: {}",
                    COMMON
                        .iter()
                        .chain(specific)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        if !COMMON.contains(&k.as_str()) && !specific.contains(&k.as_str()) {
            return Err(EsError::illegal_argument(format!(
                "setting [{k}] does not apply to a repository of type [{kind}]"
            )));
        }
    }
    if kind == "fs" && !settings.contains_key("location") {
        return Err(EsError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "repository_exception",
            "missing location",
        ));
    }
    if kind == "s3" && !settings.contains_key("bucket") {
        return Err(EsError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "repository_exception",
            "No bucket defined for s3 repository",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_byte_size("x", "1mb").unwrap(), 1 << 20);
        assert_eq!(parse_byte_size("x", "512").unwrap(), 512);
        assert_eq!(parse_byte_size("x", "1.5kb").unwrap(), 1536);
        assert!(parse_byte_size("x", "lots").is_err());
    }

    #[test]
    fn settings_are_checked() {
        let r = parse("fs", &s(&[("location", "x"), ("readonly", "true")])).unwrap();
        assert!(r.readonly);
        assert!(parse("fs", &s(&[("location", "x"), ("bogus", "1")])).is_err());
        assert!(parse("fs", &s(&[("location", "x"), ("bucket", "b")])).is_err());
        let e = parse("s3", &s(&[("bucket", "b"), ("secret_key", "x")])).unwrap_err();
        assert!(e.reason.contains("keystore"));
        assert!(!e.reason.contains("[x]"));
        assert!(parse("s3", &s(&[("bucket", "b"), ("storage_class", "nope")])).is_err());
        // Values the S3 store would not honour are refused, not silently kept.
        assert!(
            parse(
                "s3",
                &s(&[("bucket", "b"), ("server_side_encryption", "true")])
            )
            .is_err()
        );
        assert!(
            parse(
                "s3",
                &s(&[("bucket", "b"), ("server_side_encryption", "false")])
            )
            .is_ok()
        );
        assert!(parse("s3", &s(&[("bucket", "b"), ("storage_class", "glacier")])).is_err());
        assert!(parse("s3", &s(&[("bucket", "b"), ("storage_class", "standard")])).is_ok());
        assert!(parse("s3", &s(&[("bucket", "b"), ("canned_acl", "public-read")])).is_err());
        assert!(parse("s3", &s(&[("bucket", "b"), ("canned_acl", "private")])).is_ok());
        assert!(parse("s3", &s(&[("client", "c")])).is_err());
        for bad in [
            "../other-bucket",
            "a/../../b",
            "a//b",
            "./a",
            "a/.",
            "a\u{0}b",
        ] {
            assert!(
                parse("s3", &s(&[("bucket", "b"), ("base_path", bad)])).is_err(),
                "{bad:?}"
            );
        }
        for good in ["", "/", "a", "/a/b/", "backups/prod..2024"] {
            parse("s3", &s(&[("bucket", "b"), ("base_path", good)])).unwrap();
        }
        assert!(parse("nfs", &s(&[])).is_err());
    }
}
