//! Multipart uploads: CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
//! AbortMultipartUpload, ListMultipartUploads and ListParts.

use http::StatusCode;

use super::checksum::verify_body;
use super::context::{Ctx, HandlerResult, S3Response, iso_date, list_encode, write_owner};
use super::error::S3Error;
use super::object::{metadata_from, require_content_length, write_condition};
use super::router::ListUploadsParams;
use super::xml::{XmlWriter, parse_complete};

/// Largest part AWS accepts.
const MAX_PART_SIZE: usize = 5 * 1024 * 1024 * 1024;

/// CreateMultipartUpload.
pub(crate) fn create(ctx: &Ctx<'_>, bucket: &str, key: &str) -> HandlerResult {
    let (content_type, metadata) = metadata_from(&ctx.req.headers);
    // Upload ids start with a counter (so they sort by creation) and end with entropy from
    // the request sequence, so ids from different fakes do not collide by accident.
    let nonce = ctx.seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let upload_id =
        ctx.state
            .store()
            .create_upload(bucket, key, content_type, metadata, ctx.now, nonce)?;
    let mut w = XmlWriter::new();
    w.open_root("InitiateMultipartUploadResult");
    w.element("Bucket", bucket);
    w.element("Key", key);
    w.element("UploadId", &upload_id);
    w.close("InitiateMultipartUploadResult");
    Ok(S3Response::xml(w.finish()))
}

/// UploadPart.
pub(crate) fn upload_part(
    ctx: &Ctx<'_>,
    bucket: &str,
    key: &str,
    part_number: u32,
    upload_id: &str,
) -> HandlerResult {
    require_content_length(ctx)?;
    if ctx.req.body.len() > MAX_PART_SIZE {
        return Err(S3Error::new(super::error::ErrorCode::EntityTooLarge));
    }
    verify_body(&ctx.req.headers, &ctx.req.body)?;
    let etag = ctx.state.store().upload_part(
        bucket,
        key,
        upload_id,
        part_number,
        ctx.req.body.clone(),
        ctx.now,
    )?;
    Ok(S3Response::empty(StatusCode::OK).header("etag", etag))
}

/// CompleteMultipartUpload, with `If-None-Match: *` / `If-Match` checked atomically.
pub(crate) fn complete(ctx: &Ctx<'_>, bucket: &str, key: &str, upload_id: &str) -> HandlerResult {
    let condition = write_condition(ctx)?;
    let parts = parse_complete(&ctx.req.body)?;
    let etag = ctx.state.store().complete_upload(
        bucket,
        key,
        upload_id,
        &parts,
        ctx.state.config.min_part_size,
        &condition,
        ctx.now,
    )?;
    let mut w = XmlWriter::new();
    w.open_root("CompleteMultipartUploadResult");
    w.element(
        "Location",
        &format!("{}/{bucket}/{key}", ctx.state.endpoint),
    );
    w.element("Bucket", bucket);
    w.element("Key", key);
    w.element("ETag", &etag);
    w.close("CompleteMultipartUploadResult");
    Ok(S3Response::xml(w.finish()))
}

/// AbortMultipartUpload.
pub(crate) fn abort(ctx: &Ctx<'_>, bucket: &str, key: &str, upload_id: &str) -> HandlerResult {
    ctx.state.store().abort_upload(bucket, key, upload_id)?;
    Ok(S3Response::empty(StatusCode::NO_CONTENT))
}

/// ListMultipartUploads.
pub(crate) fn list_uploads(
    ctx: &Ctx<'_>,
    bucket: &str,
    params: &ListUploadsParams,
    access_key: &str,
) -> HandlerResult {
    let store = ctx.state.store();
    let (uploads, truncated) = store.list_uploads(bucket, params)?;
    let enc = |s: &str| list_encode(s, params.url_encoding);
    let mut w = XmlWriter::new();
    w.open_root("ListMultipartUploadsResult");
    w.element("Bucket", bucket);
    w.element(
        "KeyMarker",
        &enc(params.key_marker.as_deref().unwrap_or_default()),
    );
    w.element(
        "UploadIdMarker",
        params.upload_id_marker.as_deref().unwrap_or_default(),
    );
    if let (true, Some(last)) = (truncated, uploads.last()) {
        w.element("NextKeyMarker", &enc(&last.key));
        w.element("NextUploadIdMarker", &last.upload_id);
    }
    if params.url_encoding {
        w.element("EncodingType", "url");
    }
    w.element("Prefix", &enc(&params.prefix));
    w.element("MaxUploads", &params.max_uploads.to_string());
    w.element("IsTruncated", if truncated { "true" } else { "false" });
    for upload in &uploads {
        w.open("Upload");
        w.element("Key", &enc(&upload.key));
        w.element("UploadId", &upload.upload_id);
        write_owner(&mut w, "Initiator", access_key);
        write_owner(&mut w, "Owner", access_key);
        w.element("StorageClass", "STANDARD");
        w.element("Initiated", &iso_date(upload.initiated));
        w.close("Upload");
    }
    w.close("ListMultipartUploadsResult");
    Ok(S3Response::xml(w.finish()))
}

/// ListParts.
pub(crate) fn list_parts(
    ctx: &Ctx<'_>,
    bucket: &str,
    key: &str,
    upload_id: &str,
    marker: u32,
    max_parts: usize,
    access_key: &str,
) -> HandlerResult {
    let store = ctx.state.store();
    let upload = store.upload(bucket, key, upload_id)?;
    let mut parts = upload.parts.range(marker.saturating_add(1)..);
    let page: Vec<_> = parts.by_ref().take(max_parts).collect();
    let truncated = parts.next().is_some();
    let mut w = XmlWriter::new();
    w.open_root("ListPartsResult");
    w.element("Bucket", bucket);
    w.element("Key", key);
    w.element("UploadId", upload_id);
    write_owner(&mut w, "Initiator", access_key);
    write_owner(&mut w, "Owner", access_key);
    w.element("StorageClass", "STANDARD");
    w.element("PartNumberMarker", &marker.to_string());
    if let (true, Some((last, _))) = (truncated, page.last()) {
        w.element("NextPartNumberMarker", &last.to_string());
    }
    w.element("MaxParts", &max_parts.to_string());
    w.element("IsTruncated", if truncated { "true" } else { "false" });
    for (number, part) in page {
        w.open("Part");
        w.element("PartNumber", &number.to_string());
        w.element("LastModified", &iso_date(part.last_modified));
        w.element("ETag", &part.etag);
        w.element("Size", &part.data.len().to_string());
        w.close("Part");
    }
    w.close("ListPartsResult");
    Ok(S3Response::xml(w.finish()))
}
