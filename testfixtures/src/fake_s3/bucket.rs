//! Bucket operations: CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation,
//! ListBuckets, ListObjectsV2 and ListObjects (v1).

use http::StatusCode;

use super::context::{Ctx, HandlerResult, S3Response, iso_date, list_encode, write_owner};
use super::error::{ErrorCode, S3Error};
use super::router::ListParams;
use super::store::{decode_token, encode_token};
use super::xml::{XmlWriter, parse_create_bucket};

/// CreateBucket. Like AWS outside `us-east-1`, the location constraint must name the
/// endpoint's region (and may be omitted only in `us-east-1`).
pub(crate) fn create(ctx: &Ctx<'_>, bucket: &str) -> HandlerResult {
    let constraint = parse_create_bucket(&ctx.req.body)?;
    let region = ctx.state.config.region.as_str();
    match constraint.as_deref() {
        None if region == "us-east-1" => {}
        None => {
            return Err(S3Error::with_message(
                ErrorCode::IllegalLocationConstraintException,
                "The unspecified location constraint is incompatible for the region specific \
                 endpoint this request was sent to.",
            ));
        }
        Some(c) if c == region => {}
        Some(c) => {
            return Err(S3Error::with_message(
                ErrorCode::IllegalLocationConstraintException,
                format!(
                    "The {c} location constraint is incompatible for the region specific \
                     endpoint this request was sent to."
                ),
            ));
        }
    }
    ctx.state.store().create_bucket(bucket, ctx.now)?;
    Ok(S3Response::empty(StatusCode::OK).header("location", format!("/{bucket}")))
}

/// HeadBucket.
pub(crate) fn head(ctx: &Ctx<'_>, bucket: &str) -> HandlerResult {
    ctx.state.store().bucket(bucket)?;
    Ok(S3Response::empty(StatusCode::OK)
        .header("x-amz-bucket-region", ctx.state.config.region.clone()))
}

/// DeleteBucket.
pub(crate) fn delete(ctx: &Ctx<'_>, bucket: &str) -> HandlerResult {
    ctx.state.store().delete_bucket(bucket)?;
    Ok(S3Response::empty(StatusCode::NO_CONTENT))
}

/// GetBucketLocation (empty for `us-east-1`, as AWS answers).
pub(crate) fn location(ctx: &Ctx<'_>, bucket: &str) -> HandlerResult {
    ctx.state.store().bucket(bucket)?;
    let region = ctx.state.config.region.as_str();
    let mut w = XmlWriter::new();
    w.open_root("LocationConstraint");
    let mut doc = w.finish();
    if region != "us-east-1" {
        doc.push_str(&quick_xml::escape::escape(region));
    }
    doc.push_str("</LocationConstraint>");
    Ok(S3Response::xml(doc))
}

/// ListBuckets.
#[allow(clippy::unnecessary_wraps)] // Same signature as every handler.
pub(crate) fn list_buckets(ctx: &Ctx<'_>, access_key: &str) -> HandlerResult {
    let store = ctx.state.store();
    let mut w = XmlWriter::new();
    w.open_root("ListAllMyBucketsResult");
    write_owner(&mut w, "Owner", access_key);
    w.open("Buckets");
    for (name, bucket) in &store.buckets {
        w.open("Bucket");
        w.element("Name", name);
        w.element("CreationDate", &iso_date(bucket.created));
        w.close("Bucket");
    }
    w.close("Buckets");
    w.close("ListAllMyBucketsResult");
    Ok(S3Response::xml(w.finish()))
}

/// ListObjectsV2 (`v2`) or ListObjects (v1).
pub(crate) fn list_objects(
    ctx: &Ctx<'_>,
    bucket: &str,
    params: &ListParams,
    v2: bool,
) -> HandlerResult {
    let marker = match (&params.continuation_token, &params.start_after) {
        (Some(token), _) => Some(decode_token(token)?),
        (None, start_after) => start_after.clone(),
    };
    let page = ctx.state.store().list(bucket, params, marker.as_deref())?;
    let enc = |s: &str| list_encode(s, params.url_encoding);
    let mut w = XmlWriter::new();
    w.open_root("ListBucketResult");
    w.element("Name", bucket);
    w.element("Prefix", &enc(&params.prefix));
    if v2 {
        if let Some(token) = &params.continuation_token {
            w.element("ContinuationToken", token);
        }
        if let Some(start_after) = &params.start_after {
            w.element("StartAfter", &enc(start_after));
        }
        w.element(
            "KeyCount",
            &(page.contents.len() + page.common_prefixes.len()).to_string(),
        );
    } else {
        w.element(
            "Marker",
            &enc(params.start_after.as_deref().unwrap_or_default()),
        );
    }
    w.element("MaxKeys", &params.max_keys.to_string());
    if let Some(delimiter) = &params.delimiter {
        w.element("Delimiter", &enc(delimiter));
    }
    if params.url_encoding {
        w.element("EncodingType", "url");
    }
    w.element(
        "IsTruncated",
        if page.is_truncated { "true" } else { "false" },
    );
    if let Some(next) = &page.next_marker {
        if v2 {
            w.element("NextContinuationToken", &encode_token(next));
        } else {
            w.element("NextMarker", &enc(next));
        }
    }
    for object in &page.contents {
        w.open("Contents");
        w.element("Key", &enc(&object.key));
        w.element("LastModified", &iso_date(object.last_modified));
        w.element("ETag", &object.etag);
        w.element("Size", &object.size.to_string());
        w.element("StorageClass", "STANDARD");
        w.close("Contents");
    }
    for prefix in &page.common_prefixes {
        w.open("CommonPrefixes");
        w.element("Prefix", &enc(prefix));
        w.close("CommonPrefixes");
    }
    w.close("ListBucketResult");
    Ok(S3Response::xml(w.finish()))
}
