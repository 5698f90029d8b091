//! DeleteObjects: up to 1000 keys per request. AWS requires `Content-MD5` (or a checksum
//! header) on this request; we always send `Content-MD5`. Per-key failures come back in the
//! body with a 200.

use std::fmt::Write as _;

use base64::Engine as _;
use http::Method;
use md5::{Digest, Md5};
use serde::Deserialize;

use super::{Operation, S3Request};
use crate::xml;

/// The most keys one request may carry.
pub const MAX_KEYS: usize = 1000;

/// Builds the request in quiet mode (only failures are listed in the answer).
/// Fails when `keys` is empty or longer than [`MAX_KEYS`].
pub fn request(bucket: &str, keys: &[String]) -> Result<S3Request, String> {
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(format!(
            "DeleteObjects takes 1 to {MAX_KEYS} keys, got {}",
            keys.len()
        ));
    }
    let mut body = String::from(
        "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>",
    );
    for k in keys {
        let _ = write!(body, "<Object><Key>{}</Key></Object>", xml::escape(k));
    }
    body.push_str("</Delete>");
    let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(body.as_bytes()));
    Ok(
        S3Request::new(Operation::DeleteObjects, Method::POST, bucket)
            .query("delete", "")
            .header("content-md5", &md5)
            .header("content-type", "application/xml")
            .body(body.into()),
    )
}

/// A key S3 could not delete.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct DeleteError {
    /// The key.
    pub key: String,
    /// S3 error code (`AccessDenied`, `InternalError`, …).
    #[serde(default)]
    pub code: String,
    /// S3 message.
    #[serde(default)]
    pub message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Deleted {
    key: String,
}

#[derive(Deserialize)]
struct DeleteResult {
    #[serde(rename = "Deleted", default)]
    deleted: Vec<Deleted>,
    #[serde(rename = "Error", default)]
    errors: Vec<DeleteError>,
}

/// The answer to a DeleteObjects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeleteObjectsOutput {
    /// Keys reported deleted (empty in quiet mode).
    pub deleted: Vec<String>,
    /// Keys that failed, with S3's reason.
    pub errors: Vec<DeleteError>,
}

/// Parses the `<DeleteResult>` body.
pub fn parse(body: &[u8]) -> Result<DeleteObjectsOutput, String> {
    let r: DeleteResult = xml::from_body(body, "DeleteResult")?;
    Ok(DeleteObjectsOutput {
        deleted: r.deleted.into_iter().map(|d| d.key).collect(),
        errors: r.errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // From the AWS DeleteObjects reference.
    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Deleted>
    <Key>sample1.txt</Key>
  </Deleted>
  <Error>
    <Key>sample2.txt</Key>
    <Code>AccessDenied</Code>
    <Message>Access Denied</Message>
  </Error>
</DeleteResult>"#;

    #[test]
    fn parses_the_documented_answer() {
        let out = parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(out.deleted, vec!["sample1.txt"]);
        assert_eq!(out.errors.len(), 1);
        assert_eq!(out.errors[0].key, "sample2.txt");
        assert_eq!(out.errors[0].code, "AccessDenied");
        assert_eq!(out.errors[0].message, "Access Denied");
        let quiet = parse(
            b"<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></DeleteResult>",
        )
        .unwrap();
        assert_eq!(quiet, DeleteObjectsOutput::default());
    }

    #[test]
    fn always_sends_content_md5_of_the_body() {
        let keys = vec!["a&b".to_owned(), "c<d".to_owned()];
        let r = request("b", &keys).unwrap();
        let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&r.body));
        assert_eq!(r.header_value("content-md5"), Some(md5.as_str()));
        let body = std::str::from_utf8(&r.body).unwrap();
        assert!(
            body.contains("<Object><Key>a&amp;b</Key></Object><Object><Key>c&lt;d</Key></Object>")
        );
        assert_eq!(r.query, vec![("delete".to_owned(), String::new())]);
    }

    #[test]
    fn refuses_empty_and_oversized_batches() {
        assert!(request("b", &[]).is_err());
        let many: Vec<String> = (0..=MAX_KEYS).map(|i| i.to_string()).collect();
        assert!(request("b", &many).is_err());
        assert!(request("b", &many[..MAX_KEYS]).is_ok());
    }
}
