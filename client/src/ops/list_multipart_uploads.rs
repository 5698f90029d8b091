//! ListMultipartUploads: uploads in progress, for cleanup of abandoned ones.

use http::Method;
use serde::Deserialize;

use super::list_objects_v2::url_decode;
use super::{Operation, S3Request};
use crate::xml;

/// What to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListMultipartUploadsParams {
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// `NextKeyMarker` of the previous page.
    pub key_marker: Option<String>,
    /// `NextUploadIdMarker` of the previous page.
    pub upload_id_marker: Option<String>,
}

/// Builds the request.
pub fn request(bucket: &str, params: &ListMultipartUploadsParams) -> S3Request {
    let mut req = S3Request::new(Operation::ListMultipartUploads, Method::GET, bucket)
        .query("uploads", "")
        .query("encoding-type", "url");
    if let Some(m) = &params.key_marker {
        req = req.query("key-marker", m.clone());
    }
    if let Some(p) = &params.prefix {
        req = req.query("prefix", p.clone());
    }
    if let Some(m) = &params.upload_id_marker {
        req = req.query("upload-id-marker", m.clone());
    }
    req
}

/// One upload in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MultipartUpload {
    /// The key being uploaded, decoded.
    pub key: String,
    /// The upload id.
    pub upload_id: String,
    /// `Initiated`, as sent (ISO 8601).
    pub initiated: Option<String>,
}

/// One page of uploads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListMultipartUploadsOutput {
    /// Uploads on this page.
    pub uploads: Vec<MultipartUpload>,
    /// Whether another page follows.
    pub is_truncated: bool,
    /// Marker for the next page.
    pub next_key_marker: Option<String>,
    /// Marker for the next page.
    pub next_upload_id_marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(clippy::struct_field_names)] // S3's element names
struct Upload {
    key: String,
    upload_id: String,
    #[serde(default)]
    initiated: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListMultipartUploadsResult {
    #[serde(rename = "Upload", default)]
    uploads: Vec<Upload>,
    #[serde(default)]
    is_truncated: bool,
    #[serde(default)]
    next_key_marker: Option<String>,
    #[serde(default)]
    next_upload_id_marker: Option<String>,
    #[serde(default)]
    encoding_type: Option<String>,
}

/// Parses a `<ListMultipartUploadsResult>` body.
pub fn parse(body: &[u8]) -> Result<ListMultipartUploadsOutput, String> {
    let r: ListMultipartUploadsResult = xml::from_body(body, "ListMultipartUploadsResult")?;
    let encoded = r.encoding_type.as_deref() == Some("url");
    let decode = |s: String| if encoded { url_decode(&s) } else { Ok(s) };
    let mut uploads = Vec::with_capacity(r.uploads.len());
    for u in r.uploads {
        uploads.push(MultipartUpload {
            key: decode(u.key)?,
            upload_id: u.upload_id,
            initiated: u.initiated,
        });
    }
    Ok(ListMultipartUploadsOutput {
        uploads,
        is_truncated: r.is_truncated,
        next_key_marker: r
            .next_key_marker
            .filter(|s| !s.is_empty())
            .map(decode)
            .transpose()?,
        next_upload_id_marker: r.next_upload_id_marker.filter(|s| !s.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // From the AWS ListMultipartUploads reference (trimmed to two uploads).
    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>bucket</Bucket>
  <KeyMarker></KeyMarker>
  <UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>my-movie.m2ts</NextKeyMarker>
  <NextUploadIdMarker>YW55IGlkZWEgd2h5IGVsdmluZydzIHVwbG9hZCBmYWlsZWQ</NextUploadIdMarker>
  <MaxUploads>3</MaxUploads>
  <IsTruncated>true</IsTruncated>
  <Upload>
    <Key>my-divisor</Key>
    <UploadId>XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw</UploadId>
    <Initiator>
      <ID>arn:aws:iam::111122223333:user/user1-11111a31-17b5-4fb7-9df5-b111111f13de</ID>
      <DisplayName>user1-11111a31-17b5-4fb7-9df5-b111111f13de</DisplayName>
    </Initiator>
    <Owner>
      <ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID>
      <DisplayName>OwnerDisplayName</DisplayName>
    </Owner>
    <StorageClass>STANDARD</StorageClass>
    <Initiated>2010-11-10T20:48:33.000Z</Initiated>
  </Upload>
  <Upload>
    <Key>my-movie.m2ts</Key>
    <UploadId>VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>
    <StorageClass>STANDARD</StorageClass>
    <Initiated>2010-11-10T20:48:33.000Z</Initiated>
  </Upload>
</ListMultipartUploadsResult>"#;

    #[test]
    fn parses_the_documented_answer() {
        let out = parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(out.uploads.len(), 2);
        assert_eq!(out.uploads[0].key, "my-divisor");
        assert_eq!(
            out.uploads[1].upload_id,
            "VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA"
        );
        assert_eq!(
            out.uploads[1].initiated.as_deref(),
            Some("2010-11-10T20:48:33.000Z")
        );
        assert!(out.is_truncated);
        assert_eq!(out.next_key_marker.as_deref(), Some("my-movie.m2ts"));
        let empty = parse(b"<ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>").unwrap();
        assert!(empty.uploads.is_empty());
    }

    #[test]
    fn builds_the_request() {
        let r = request(
            "b",
            &ListMultipartUploadsParams {
                prefix: Some("p/".into()),
                ..Default::default()
            },
        );
        assert_eq!(r.query[0], ("uploads".to_owned(), String::new()));
        assert!(r.query.contains(&("prefix".to_owned(), "p/".to_owned())));
    }
}
