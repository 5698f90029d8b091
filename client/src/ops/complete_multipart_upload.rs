//! CompleteMultipartUpload: assembles the parts. May carry `If-None-Match: *` / `If-Match`
//! like PutObject. S3 may answer 200 and then send `<Error>` in the body (it keeps the
//! connection alive while assembling); the client checks the root element before parsing.

use std::fmt::Write as _;

use http::Method;
use md5::{Digest, Md5};
use serde::Deserialize;

use super::{ETag, EtagQuoting, Operation, PutMode, S3Request};
use crate::xml;

/// A part as listed in the completion request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedPart {
    /// 1-based part number.
    pub part_number: u32,
    /// ETag returned by UploadPart.
    pub etag: ETag,
}

/// Builds the request. Parts must be in ascending order of part number.
pub fn request(
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: &[CompletedPart],
    mode: &PutMode,
    quoting: EtagQuoting,
) -> S3Request {
    let mut body =
        String::from("<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for p in parts {
        let _ = write!(
            body,
            "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
            p.part_number,
            xml::escape(&p.etag.quoted())
        );
    }
    body.push_str("</CompleteMultipartUpload>");
    let req = S3Request::new(Operation::CompleteMultipartUpload, Method::POST, bucket)
        .key(key)
        .query("uploadId", upload_id)
        .header("content-type", "application/xml")
        .body(body.into());
    // POST, but replayable by key: a replay after success finds no upload (NoSuchUpload),
    // which the client resolves by comparing the object's ETag with `expected_etag`.
    mode.apply(req, quoting)
}

/// The ETag S3, Ceph, MinIO and Garage give a multipart object: MD5 of the concatenated
/// binary part MD5s, then `-<part count>`. Used to recognise our own completed upload when a
/// replayed completion finds the upload gone.
pub fn expected_etag(parts: &[CompletedPart]) -> Option<ETag> {
    let mut md5 = Md5::new();
    for p in parts {
        let raw = hex::decode(p.etag.as_str()).ok()?;
        if raw.len() != 16 {
            return None;
        }
        md5.update(&raw);
    }
    Some(ETag::parse(&format!(
        "{}-{}",
        hex::encode(md5.finalize()),
        parts.len()
    )))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CompleteMultipartUploadResult {
    #[serde(rename = "ETag")]
    etag: String,
    #[serde(default)]
    location: Option<String>,
}

/// The answer to a completion.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompleteMultipartUploadOutput {
    /// ETag of the assembled object.
    pub etag: ETag,
    /// `Location`, when sent.
    pub location: Option<String>,
}

/// Parses a `<CompleteMultipartUploadResult>` body (the caller has ruled out `<Error>`).
pub fn parse(body: &[u8]) -> Result<CompleteMultipartUploadOutput, String> {
    let r: CompleteMultipartUploadResult = xml::from_body(body, "CompleteMultipartUploadResult")?;
    Ok(CompleteMultipartUploadOutput {
        etag: ETag::parse(&r.etag),
        location: r.location,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // From the AWS CompleteMultipartUpload reference.
    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Location>http://Example-Bucket.s3.<Region>.amazonaws.com/Example-Object</Location>
  <Bucket>Example-Bucket</Bucket>
  <Key>Example-Object</Key>
  <ETag>"3858f62230ac3c915f300c664312c11f-9"</ETag>
</CompleteMultipartUploadResult>"#;

    #[test]
    fn parses_the_documented_answer() {
        // The documented sample has a literal `<Region>` placeholder inside Location, which
        // is not XML; the real answer has a region name there.
        let real = SAMPLE.replace("<Region>", "us-east-1");
        let out = parse(real.as_bytes()).unwrap();
        assert_eq!(out.etag.as_str(), "3858f62230ac3c915f300c664312c11f-9");
        assert_eq!(
            out.location.as_deref(),
            Some("http://Example-Bucket.s3.us-east-1.amazonaws.com/Example-Object")
        );
    }

    #[test]
    fn builds_the_documented_body_with_conditions() {
        let parts = [
            CompletedPart {
                part_number: 1,
                etag: ETag::parse("\"a54357aff0632cce46d942af68356b38\""),
            },
            CompletedPart {
                part_number: 2,
                etag: ETag::parse("\"0c78aef83f66abc1fa1e8477f296d394\""),
            },
        ];
        let r = request(
            "b",
            "k",
            "UP",
            &parts,
            &PutMode::Create,
            EtagQuoting::Quoted,
        );
        let body = std::str::from_utf8(&r.body).unwrap();
        assert!(body.contains("<Part><PartNumber>1</PartNumber><ETag>&quot;a54357aff0632cce46d942af68356b38&quot;</ETag></Part>"));
        assert!(body.ends_with("<Part><PartNumber>2</PartNumber><ETag>&quot;0c78aef83f66abc1fa1e8477f296d394&quot;</ETag></Part></CompleteMultipartUpload>"));
        assert_eq!(r.header_value("if-none-match"), Some("*"));
        assert_eq!(r.query, vec![("uploadId".to_owned(), "UP".to_owned())]);
    }

    #[test]
    fn expected_etag_is_md5_of_md5s() {
        // Two parts whose MD5s are those of "a" and "b".
        let pa = hex::encode(Md5::digest(b"a"));
        let pb = hex::encode(Md5::digest(b"b"));
        let parts = [
            CompletedPart {
                part_number: 1,
                etag: ETag::parse(&pa),
            },
            CompletedPart {
                part_number: 2,
                etag: ETag::parse(&pb),
            },
        ];
        let mut cat = Md5::digest(b"a").to_vec();
        cat.extend_from_slice(&Md5::digest(b"b"));
        let want = format!("{}-2", hex::encode(Md5::digest(&cat)));
        assert_eq!(expected_etag(&parts).unwrap().as_str(), want);
        let odd = [CompletedPart {
            part_number: 1,
            etag: ETag::parse("not-hex"),
        }];
        assert!(expected_etag(&odd).is_none());
    }
}
