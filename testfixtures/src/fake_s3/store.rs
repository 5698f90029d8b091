//! The in-memory store: buckets of objects (a `BTreeMap` per bucket, so listings are ordered
//! range scans) and in-progress multipart uploads. Every method is synchronous and pure given
//! `now`; the server holds one lock around each call, which is what makes conditional writes
//! atomic.

use std::collections::BTreeMap;
use std::ops::Bound;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};

use super::checksum::{etag_list_matches, etag_md5, etag_of, md5, multipart_etag, normalize_etag};
use super::error::{ErrorCode, S3Error};
use super::router::{ListParams, ListUploadsParams};

/// A stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The content.
    pub data: Bytes,
    /// Quoted ETag (`"md5hex"` or `"md5hex-N"` for multipart).
    pub etag: String,
    /// Last modification time (from the injected clock).
    pub last_modified: DateTime<Utc>,
    /// `Content-Type` (default `binary/octet-stream`, like AWS).
    pub content_type: String,
    /// Other stored headers: `x-amz-meta-*`, `cache-control`, `content-encoding`, … (names
    /// lower-case).
    pub metadata: Vec<(String, String)>,
    /// Number of parts for a multipart object.
    pub parts_count: Option<u32>,
}

impl Object {
    /// The size in bytes.
    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }
}

/// An uploaded part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The content.
    pub data: Bytes,
    /// Quoted MD5 ETag.
    pub etag: String,
    /// Upload time.
    pub last_modified: DateTime<Utc>,
}

/// An in-progress multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::struct_field_names)] // `upload_id` is the S3 name.
pub struct Upload {
    /// Object key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// Creation time.
    pub initiated: DateTime<Utc>,
    /// Content type for the final object.
    pub content_type: String,
    /// Metadata for the final object.
    pub metadata: Vec<(String, String)>,
    /// Parts by number.
    pub parts: BTreeMap<u32, Part>,
}

/// A bucket.
#[derive(Debug, Clone, Default)]
pub struct Bucket {
    /// Creation time.
    pub created: DateTime<Utc>,
    /// Objects by key.
    pub objects: BTreeMap<String, Object>,
    /// Uploads by (key, upload id), which is ListMultipartUploads order.
    pub uploads: BTreeMap<(String, String), Upload>,
}

/// Conditional-write headers of a PutObject, CopyObject, CompleteMultipartUpload or
/// DeleteObject.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WriteCondition {
    /// `If-None-Match: *`: only create.
    pub if_none_match_star: bool,
    /// `If-Match: <etag list>`: only replace this version.
    pub if_match: Option<String>,
}

impl WriteCondition {
    /// Whether any condition is set.
    pub fn is_conditional(&self) -> bool {
        self.if_none_match_star || self.if_match.is_some()
    }

    /// Checks the condition against the current object, as AWS does: `If-None-Match: *` on an
    /// existing key is 412; `If-Match` on a missing key is 404 `NoSuchKey`, on another ETag 412.
    pub fn check(&self, key: &str, existing: Option<&Object>) -> Result<(), S3Error> {
        if self.if_none_match_star && existing.is_some() {
            return Err(S3Error::precondition_failed("If-None-Match"));
        }
        if let Some(list) = &self.if_match {
            match existing {
                None => return Err(S3Error::no_such_key(key)),
                Some(object) if !etag_list_matches(list, &object.etag) => {
                    return Err(S3Error::precondition_failed("If-Match"));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    /// Objects: key and a copy of the object's listing fields.
    pub contents: Vec<ListedObject>,
    /// Common prefixes, in order.
    pub common_prefixes: Vec<String>,
    /// Whether more entries follow.
    pub is_truncated: bool,
    /// The last key or common prefix returned (the next marker), when truncated.
    pub next_marker: Option<String>,
}

/// The listing fields of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// Key.
    pub key: String,
    /// Quoted ETag.
    pub etag: String,
    /// Size.
    pub size: u64,
    /// Last modification.
    pub last_modified: DateTime<Utc>,
}

/// Encodes a marker as an opaque continuation token.
pub fn encode_token(marker: &str) -> String {
    URL_SAFE_NO_PAD.encode(marker.as_bytes())
}

/// Decodes a continuation token produced by [`encode_token`].
pub fn decode_token(token: &str) -> Result<String, S3Error> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            S3Error::invalid_argument(
                "The continuation token provided is incorrect",
                "continuation-token",
                token,
            )
        })
}

/// All buckets.
#[derive(Debug, Default)]
pub struct Store {
    /// Buckets by name.
    pub buckets: BTreeMap<String, Bucket>,
    upload_counter: u64,
}

/// Whether `name` follows the S3 bucket naming rules (3–63 characters of lower-case letters,
/// digits, `-` and `.`, starting and ending with a letter or digit).
pub fn valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
}

impl Store {
    /// The bucket, or `NoSuchBucket`.
    pub fn bucket(&self, name: &str) -> Result<&Bucket, S3Error> {
        self.buckets
            .get(name)
            .ok_or_else(|| S3Error::no_such_bucket(name))
    }

    /// The bucket, mutable, or `NoSuchBucket`.
    pub fn bucket_mut(&mut self, name: &str) -> Result<&mut Bucket, S3Error> {
        self.buckets
            .get_mut(name)
            .ok_or_else(|| S3Error::no_such_bucket(name))
    }

    /// Creates a bucket; `BucketAlreadyOwnedByYou` if it exists.
    pub fn create_bucket(&mut self, name: &str, now: DateTime<Utc>) -> Result<(), S3Error> {
        if !valid_bucket_name(name) {
            return Err(S3Error::new(ErrorCode::InvalidBucketName).detail("BucketName", name));
        }
        if self.buckets.contains_key(name) {
            return Err(S3Error::new(ErrorCode::BucketAlreadyOwnedByYou).detail("BucketName", name));
        }
        self.buckets.insert(
            name.to_owned(),
            Bucket {
                created: now,
                ..Bucket::default()
            },
        );
        Ok(())
    }

    /// Deletes an empty bucket.
    pub fn delete_bucket(&mut self, name: &str) -> Result<(), S3Error> {
        let bucket = self.bucket(name)?;
        if !bucket.objects.is_empty() || !bucket.uploads.is_empty() {
            return Err(S3Error::new(ErrorCode::BucketNotEmpty).detail("BucketName", name));
        }
        self.buckets.remove(name);
        Ok(())
    }

    /// Stores an object after checking `condition` atomically (the caller holds the lock).
    pub fn put_object(
        &mut self,
        bucket: &str,
        key: &str,
        object: Object,
        condition: &WriteCondition,
    ) -> Result<(), S3Error> {
        let bucket = self.bucket_mut(bucket)?;
        condition.check(key, bucket.objects.get(key))?;
        bucket.objects.insert(key.to_owned(), object);
        Ok(())
    }

    /// The object, or `NoSuchKey` / `NoSuchBucket`.
    pub fn object(&self, bucket: &str, key: &str) -> Result<&Object, S3Error> {
        self.bucket(bucket)?
            .objects
            .get(key)
            .ok_or_else(|| S3Error::no_such_key(key))
    }

    /// Deletes an object (absent keys are fine, as in S3) after checking `condition`.
    /// Returns whether something was deleted.
    pub fn delete_object(
        &mut self,
        bucket: &str,
        key: &str,
        condition: &WriteCondition,
    ) -> Result<bool, S3Error> {
        let bucket = self.bucket_mut(bucket)?;
        if condition.is_conditional() {
            condition.check(key, bucket.objects.get(key))?;
        }
        Ok(bucket.objects.remove(key).is_some())
    }

    /// Lists objects: `prefix`, `delimiter` (common prefixes count towards `max_keys`),
    /// resuming strictly after `marker`.
    pub fn list(
        &self,
        bucket: &str,
        params: &ListParams,
        marker: Option<&str>,
    ) -> Result<ListPage, S3Error> {
        let bucket = self.bucket(bucket)?;
        let mut page = ListPage::default();
        if params.max_keys == 0 {
            return Ok(page);
        }
        let prefix = params.prefix.as_str();
        let start = match marker {
            Some(m) if m >= prefix => Bound::Excluded(m.to_owned()),
            _ => Bound::Included(prefix.to_owned()),
        };
        let mut count = 0usize;
        let mut last: Option<String> = None;
        for (key, object) in bucket.objects.range((start, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            let entry_prefix = params.delimiter.as_deref().and_then(|d| {
                key[prefix.len()..]
                    .find(d)
                    .map(|i| key[..prefix.len() + i + d.len()].to_owned())
            });
            // Keys under a common prefix already returned (on this page or a previous one)
            // are folded into it.
            if let Some(cp) = &entry_prefix
                && (marker.is_some_and(|m| cp.as_str() <= m) || last.as_deref() == Some(cp))
            {
                continue;
            }
            if count == params.max_keys {
                page.is_truncated = true;
                page.next_marker = last;
                return Ok(page);
            }
            count += 1;
            if let Some(cp) = entry_prefix {
                page.common_prefixes.push(cp.clone());
                last = Some(cp);
            } else {
                page.contents.push(ListedObject {
                    key: key.clone(),
                    etag: object.etag.clone(),
                    size: object.size(),
                    last_modified: object.last_modified,
                });
                last = Some(key.clone());
            }
        }
        Ok(page)
    }

    /// Starts a multipart upload and returns its id. Ids sort in creation order.
    pub fn create_upload(
        &mut self,
        bucket: &str,
        key: &str,
        content_type: String,
        metadata: Vec<(String, String)>,
        now: DateTime<Utc>,
        nonce: u64,
    ) -> Result<String, S3Error> {
        self.upload_counter += 1;
        let upload_id = format!("{:016x}{nonce:016x}", self.upload_counter);
        let bucket = self.bucket_mut(bucket)?;
        bucket.uploads.insert(
            (key.to_owned(), upload_id.clone()),
            Upload {
                key: key.to_owned(),
                upload_id: upload_id.clone(),
                initiated: now,
                content_type,
                metadata,
                parts: BTreeMap::new(),
            },
        );
        Ok(upload_id)
    }

    /// The upload, mutable, or `NoSuchUpload`.
    pub fn upload_mut(
        &mut self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<&mut Upload, S3Error> {
        self.bucket_mut(bucket)?
            .uploads
            .get_mut(&(key.to_owned(), upload_id.to_owned()))
            .ok_or_else(|| S3Error::no_such_upload(upload_id))
    }

    /// The upload, or `NoSuchUpload`.
    pub fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<&Upload, S3Error> {
        self.bucket(bucket)?
            .uploads
            .get(&(key.to_owned(), upload_id.to_owned()))
            .ok_or_else(|| S3Error::no_such_upload(upload_id))
    }

    /// Stores a part (replacing a previous one with the same number) and returns its ETag.
    pub fn upload_part(
        &mut self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        data: Bytes,
        now: DateTime<Utc>,
    ) -> Result<String, S3Error> {
        let upload = self.upload_mut(bucket, key, upload_id)?;
        let etag = etag_of(&data);
        upload.parts.insert(
            part_number,
            Part {
                data,
                etag: etag.clone(),
                last_modified: now,
            },
        );
        Ok(etag)
    }

    /// Aborts an upload.
    pub fn abort_upload(
        &mut self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), S3Error> {
        self.bucket_mut(bucket)?
            .uploads
            .remove(&(key.to_owned(), upload_id.to_owned()))
            .map(|_| ())
            .ok_or_else(|| S3Error::no_such_upload(upload_id))
    }

    /// Completes an upload from the listed parts, checking part order, ETags, the minimum part
    /// size and `condition` atomically, and returns the new object's ETag.
    #[allow(clippy::too_many_arguments)]
    pub fn complete_upload(
        &mut self,
        bucket_name: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        min_part_size: u64,
        condition: &WriteCondition,
        now: DateTime<Utc>,
    ) -> Result<String, S3Error> {
        let bucket = self.bucket_mut(bucket_name)?;
        let upload = bucket
            .uploads
            .get(&(key.to_owned(), upload_id.to_owned()))
            .ok_or_else(|| S3Error::no_such_upload(upload_id))?;
        // The order of the whole list is checked before any part, as AWS reports it first.
        if parts.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(S3Error::new(ErrorCode::InvalidPartOrder));
        }
        let mut total = 0usize;
        let mut digests = Vec::with_capacity(parts.len());
        for (index, (number, etag)) in parts.iter().enumerate() {
            let part = upload
                .parts
                .get(number)
                .filter(|p| normalize_etag(&p.etag) == normalize_etag(etag));
            let Some(part) = part else {
                return Err(S3Error::new(ErrorCode::InvalidPart)
                    .detail("UploadId", upload_id)
                    .detail("PartNumber", number.to_string())
                    .detail("ETag", etag));
            };
            let is_last = index + 1 == parts.len();
            if !is_last && (part.data.len() as u64) < min_part_size {
                return Err(S3Error::new(ErrorCode::EntityTooSmall)
                    .detail("ProposedSize", part.data.len().to_string())
                    .detail("MinSizeAllowed", min_part_size.to_string())
                    .detail("PartNumber", number.to_string())
                    .detail("ETag", &part.etag));
            }
            total += part.data.len();
            digests.push(etag_md5(&part.etag).unwrap_or_else(|| md5(&part.data)));
        }
        condition.check(key, bucket.objects.get(key))?;
        let upload = bucket
            .uploads
            .remove(&(key.to_owned(), upload_id.to_owned()))
            .expect("upload looked up above under the same lock");
        let mut data = BytesMut::with_capacity(total);
        for (number, _) in parts {
            data.extend_from_slice(&upload.parts[number].data);
        }
        let etag = multipart_etag(&digests);
        bucket.objects.insert(
            key.to_owned(),
            Object {
                data: data.freeze(),
                etag: etag.clone(),
                last_modified: now,
                content_type: upload.content_type,
                metadata: upload.metadata,
                parts_count: Some(u32::try_from(parts.len()).unwrap_or(u32::MAX)),
            },
        );
        Ok(etag)
    }

    /// Lists uploads in (key, upload id) order after the markers. Returns the page and whether
    /// it is truncated.
    pub fn list_uploads(
        &self,
        bucket: &str,
        params: &ListUploadsParams,
    ) -> Result<(Vec<&Upload>, bool), S3Error> {
        let bucket = self.bucket(bucket)?;
        let mut out = Vec::new();
        for ((key, upload_id), upload) in &bucket.uploads {
            if !key.starts_with(&params.prefix) {
                continue;
            }
            if let Some(key_marker) = &params.key_marker {
                let after = match &params.upload_id_marker {
                    Some(id_marker) => {
                        key > key_marker || (key == key_marker && upload_id > id_marker)
                    }
                    None => key > key_marker,
                };
                if !after {
                    continue;
                }
            }
            if out.len() == params.max_uploads {
                return Ok((out, true));
            }
            out.push(upload);
        }
        Ok((out, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn object(data: &'static [u8]) -> Object {
        Object {
            data: Bytes::from_static(data),
            etag: etag_of(data),
            last_modified: now(),
            content_type: "binary/octet-stream".into(),
            metadata: vec![],
            parts_count: None,
        }
    }

    fn store_with(keys: &[&str]) -> Store {
        let mut store = Store::default();
        store.create_bucket("bkt", now()).unwrap();
        for key in keys {
            store
                .put_object("bkt", key, object(b"x"), &WriteCondition::default())
                .unwrap();
        }
        store
    }

    fn params(prefix: &str, delimiter: Option<&str>, max_keys: usize) -> ListParams {
        ListParams {
            prefix: prefix.into(),
            delimiter: delimiter.map(Into::into),
            max_keys,
            ..ListParams::default()
        }
    }

    #[test]
    fn conditional_puts() {
        let mut store = store_with(&[]);
        let create = WriteCondition {
            if_none_match_star: true,
            if_match: None,
        };
        store.put_object("bkt", "k", object(b"1"), &create).unwrap();
        let err = store
            .put_object("bkt", "k", object(b"2"), &create)
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::PreconditionFailed);
        let etag = store.object("bkt", "k").unwrap().etag.clone();
        let replace = |e: &str| WriteCondition {
            if_none_match_star: false,
            if_match: Some(e.to_owned()),
        };
        let err = store
            .put_object("bkt", "k", object(b"3"), &replace("\"nope\""))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::PreconditionFailed);
        // Unquoted ETags match too (Ceph 16 style).
        store
            .put_object("bkt", "k", object(b"3"), &replace(normalize_etag(&etag)))
            .unwrap();
        let err = store
            .put_object("bkt", "missing", object(b"3"), &replace(&etag))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::NoSuchKey);
        assert_eq!(
            store
                .put_object("nobkt", "k", object(b"3"), &WriteCondition::default())
                .unwrap_err()
                .code,
            ErrorCode::NoSuchBucket
        );
    }

    #[test]
    fn listing_with_delimiter_and_pagination() {
        let store = store_with(&["a/1", "a/2", "b", "c/x/1", "c/y", "d"]);
        let page = store
            .list("bkt", &params("", Some("/"), 1000), None)
            .unwrap();
        assert_eq!(page.common_prefixes, vec!["a/", "c/"]);
        assert_eq!(
            page.contents
                .iter()
                .map(|o| o.key.as_str())
                .collect::<Vec<_>>(),
            vec!["b", "d"]
        );
        assert!(!page.is_truncated);

        // Pages of 1 walk entries (keys and prefixes) in order without repeats.
        let mut marker: Option<String> = None;
        let mut seen = Vec::new();
        loop {
            let page = store
                .list("bkt", &params("", Some("/"), 1), marker.as_deref())
                .unwrap();
            seen.extend(page.common_prefixes.clone());
            seen.extend(page.contents.iter().map(|o| o.key.clone()));
            if !page.is_truncated {
                break;
            }
            marker = page.next_marker;
        }
        assert_eq!(seen, vec!["a/", "b", "c/", "d"]);

        let page = store
            .list("bkt", &params("c/", Some("/"), 1000), None)
            .unwrap();
        assert_eq!(page.common_prefixes, vec!["c/x/"]);
        assert_eq!(page.contents[0].key, "c/y");
        let page = store.list("bkt", &params("a", None, 1), None).unwrap();
        assert!(page.is_truncated);
        assert_eq!(page.next_marker.as_deref(), Some("a/1"));
        let page = store
            .list("bkt", &params("a", None, 1000), Some("a/1"))
            .unwrap();
        assert_eq!(page.contents.len(), 1);
        assert_eq!(page.contents[0].key, "a/2");
        assert!(
            store
                .list("bkt", &params("", None, 0), None)
                .unwrap()
                .contents
                .is_empty()
        );
    }

    #[test]
    fn tokens_round_trip() {
        assert_eq!(decode_token(&encode_token("a/é b")).unwrap(), "a/é b");
        assert_eq!(
            decode_token("!!").unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn multipart_complete_checks_parts() {
        let mut store = store_with(&[]);
        let id = store
            .create_upload("bkt", "big", "text/plain".into(), vec![], now(), 7)
            .unwrap();
        let e1 = store
            .upload_part("bkt", "big", &id, 1, Bytes::from(vec![1u8; 10]), now())
            .unwrap();
        let e2 = store
            .upload_part("bkt", "big", &id, 2, Bytes::from_static(b"tail"), now())
            .unwrap();
        let none = WriteCondition::default();
        let err = store
            .complete_upload(
                "bkt",
                "big",
                &id,
                &[(2, e2.clone()), (1, e1.clone())],
                0,
                &none,
                now(),
            )
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidPartOrder);
        let err = store
            .complete_upload("bkt", "big", &id, &[(1, "\"bad\"".into())], 0, &none, now())
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidPart);
        let err = store
            .complete_upload(
                "bkt",
                "big",
                &id,
                &[(1, e1.clone()), (2, e2.clone())],
                11,
                &none,
                now(),
            )
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::EntityTooSmall);
        let etag = store
            .complete_upload(
                "bkt",
                "big",
                &id,
                &[(1, e1.clone()), (2, e2.clone())],
                10,
                &none,
                now(),
            )
            .unwrap();
        assert_eq!(etag, multipart_etag(&[md5(&[1u8; 10]), md5(b"tail")]));
        let object = store.object("bkt", "big").unwrap();
        assert_eq!(object.size(), 14);
        assert_eq!(object.content_type, "text/plain");
        assert_eq!(object.parts_count, Some(2));
        let err = store
            .complete_upload("bkt", "big", &id, &[(1, e1)], 0, &none, now())
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::NoSuchUpload);
    }

    #[test]
    fn uploads_list_in_key_then_creation_order() {
        let mut store = store_with(&[]);
        let b1 = store
            .create_upload("bkt", "b", String::new(), vec![], now(), 0)
            .unwrap();
        let a1 = store
            .create_upload("bkt", "a", String::new(), vec![], now(), 0)
            .unwrap();
        let b2 = store
            .create_upload("bkt", "b", String::new(), vec![], now(), 0)
            .unwrap();
        let all = ListUploadsParams {
            max_uploads: 1000,
            ..ListUploadsParams::default()
        };
        let (uploads, truncated) = store.list_uploads("bkt", &all).unwrap();
        assert!(!truncated);
        let ids: Vec<_> = uploads.iter().map(|u| u.upload_id.clone()).collect();
        assert_eq!(ids, vec![a1, b1.clone(), b2.clone()]);
        let after = ListUploadsParams {
            key_marker: Some("b".into()),
            upload_id_marker: Some(b1),
            max_uploads: 1,
            ..ListUploadsParams::default()
        };
        let (uploads, truncated) = store.list_uploads("bkt", &after).unwrap();
        assert_eq!(uploads[0].upload_id, b2);
        assert!(!truncated);
    }

    #[test]
    fn bucket_rules() {
        assert!(valid_bucket_name("my-bucket.1"));
        for bad in ["ab", "Upper", "-x-", "a..b", &"a".repeat(64)] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
        let mut store = store_with(&["k"]);
        assert_eq!(
            store.create_bucket("bkt", now()).unwrap_err().code,
            ErrorCode::BucketAlreadyOwnedByYou
        );
        assert_eq!(
            store.delete_bucket("bkt").unwrap_err().code,
            ErrorCode::BucketNotEmpty
        );
        store
            .delete_object("bkt", "k", &WriteCondition::default())
            .unwrap();
        store.delete_bucket("bkt").unwrap();
        assert_eq!(
            store.delete_bucket("bkt").unwrap_err().code,
            ErrorCode::NoSuchBucket
        );
    }
}
