//! SigV4 signing with the `aws-sigv4` crate. Pure: the time is a parameter.

use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::credentials::{Credentials, expose};

/// SHA-256 of the empty body.
pub(crate) const EMPTY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What `x-amz-content-sha256` carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PayloadHash {
    /// Lower-case hex SHA-256 of the body.
    Sha256(String),
    /// `UNSIGNED-PAYLOAD` (only over HTTPS, where TLS protects the bytes).
    Unsigned,
}

impl PayloadHash {
    /// Hashes `body` (sha2 picks SHA-NI at run time when the CPU has it).
    pub(crate) fn of(body: &[u8]) -> PayloadHash {
        if body.is_empty() {
            PayloadHash::Sha256(EMPTY_SHA256.to_owned())
        } else {
            PayloadHash::Sha256(hex::encode(Sha256::digest(body)))
        }
    }
}

/// Signs a request. `headers` must include `host` and every header to sign; returns the
/// headers to add (`x-amz-date`, `x-amz-content-sha256`, `authorization`, and
/// `x-amz-security-token` with session credentials). `url` is the encoded URL as sent.
pub(crate) fn sign_request(
    method: &str,
    url: &str,
    headers: &HeaderMap,
    payload: &PayloadHash,
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(&'static str, String)>, String> {
    let identity: Identity = aws_credential_types::Credentials::new(
        credentials.access_key_id(),
        expose(credentials.secret_access_key()),
        credentials.session_token().map(|t| expose(t).to_owned()),
        None,
        "coffer-keystore-or-chain",
    )
    .into();
    let mut settings = SigningSettings::default();
    // S3 signs the path exactly as sent (already encoded once), without normalisation.
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| format!("cannot build signing parameters: {e}"))?
        .into();
    let mut pairs = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let v = value
            .to_str()
            .map_err(|_| format!("header {name} is not visible ASCII and cannot be signed"))?;
        pairs.push((name.as_str(), v));
    }
    let body = match payload {
        PayloadHash::Sha256(hex) => SignableBody::Precomputed(hex.clone()),
        PayloadHash::Unsigned => SignableBody::UnsignedPayload,
    };
    let signable = SignableRequest::new(method, url, pairs.into_iter(), body)
        .map_err(|e| format!("cannot sign request: {e}"))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| format!("cannot sign request: {e}"))?
        .into_parts();
    let (out, _query) = instructions.into_parts();
    Ok(out
        .into_iter()
        .map(|h| (h.name(), h.value().to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use secrecy::SecretString;
    use std::time::{Duration, UNIX_EPOCH};

    // The examples of the AWS S3 documentation, "Signature Calculations for the
    // Authorization Header: Transferring Payload in a Single Chunk".
    fn example_credentials() -> Credentials {
        Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            SecretString::from("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            None,
        )
    }

    /// 20130524T000000Z
    fn example_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn authorization(out: &[(&'static str, String)]) -> String {
        out.iter()
            .find(|(k, _)| *k == "authorization")
            .unwrap()
            .1
            .clone()
    }

    #[test]
    fn aws_example_get_object() {
        let h = headers(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
        ]);
        let out = sign_request(
            "GET",
            "https://examplebucket.s3.amazonaws.com/test.txt",
            &h,
            &PayloadHash::of(b""),
            &example_credentials(),
            "us-east-1",
            example_time(),
        )
        .unwrap();
        let auth = authorization(&out);
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"), "{auth}");
        assert!(
            auth.contains("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date"),
            "{auth}"
        );
        assert!(
            auth.ends_with(
                "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            ),
            "{auth}"
        );
        assert!(out.contains(&("x-amz-date", "20130524T000000Z".to_owned())));
        assert!(out.contains(&("x-amz-content-sha256", EMPTY_SHA256.to_owned())));
    }

    #[test]
    fn aws_example_put_object() {
        let body = b"Welcome to Amazon S3.";
        let h = headers(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ]);
        let payload = PayloadHash::of(body);
        assert_eq!(
            payload,
            PayloadHash::Sha256(
                "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072".into()
            )
        );
        let out = sign_request(
            "PUT",
            &format!(
                "https://examplebucket.s3.amazonaws.com/{}",
                crate::endpoint::encode_key("test$file.text")
            ),
            &h,
            &payload,
            &example_credentials(),
            "us-east-1",
            example_time(),
        )
        .unwrap();
        let auth = authorization(&out);
        assert!(
            auth.contains(
                "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class"
            ),
            "{auth}"
        );
        assert!(
            auth.ends_with(
                "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
            ),
            "{auth}"
        );
    }

    #[test]
    fn aws_example_get_bucket_lifecycle_and_list_objects() {
        let h = headers(&[("host", "examplebucket.s3.amazonaws.com")]);
        let creds = example_credentials();
        let out = sign_request(
            "GET",
            "https://examplebucket.s3.amazonaws.com/?lifecycle=",
            &h,
            &PayloadHash::of(b""),
            &creds,
            "us-east-1",
            example_time(),
        )
        .unwrap();
        assert!(authorization(&out).ends_with(
            "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        ));
        let out = sign_request(
            "GET",
            "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
            &h,
            &PayloadHash::of(b""),
            &creds,
            "us-east-1",
            example_time(),
        )
        .unwrap();
        let auth = authorization(&out);
        assert!(
            auth.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date"),
            "{auth}"
        );
        assert!(
            auth.ends_with(
                "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            ),
            "{auth}"
        );
    }

    #[test]
    fn unsigned_payload_and_session_token() {
        let creds = Credentials::new(
            "AKID",
            SecretString::from("secret"),
            Some(SecretString::from("TOKEN")),
        );
        let h = headers(&[("host", "h")]);
        let out = sign_request(
            "PUT",
            "https://h/b/k",
            &h,
            &PayloadHash::Unsigned,
            &creds,
            "garage",
            example_time(),
        )
        .unwrap();
        assert!(out.contains(&("x-amz-content-sha256", "UNSIGNED-PAYLOAD".to_owned())));
        assert!(out.contains(&("x-amz-security-token", "TOKEN".to_owned())));
        let auth = authorization(&out);
        assert!(auth.contains("/20130524/garage/s3/aws4_request"), "{auth}");
        assert!(
            auth.contains("x-amz-security-token"),
            "the token is signed: {auth}"
        );
        assert!(!auth.contains("secret"));
    }
}
