//! coffer's own S3 client: SigV4 (the `aws-sigv4` crate, time injected), requests built and
//! answers parsed by pure functions (one module per operation under [`ops`]), streaming
//! uploads and downloads, retries with full jitter, adaptive concurrency, a semantic error
//! enum, metering, and named clients configured from `s3.client.<name>.*`.
//!
//! Design notes, the error table and server quirks: `docs/s3-client.md`.

mod client;
pub mod credentials;
mod download;
pub mod endpoint;
mod error;
mod limiter;
pub mod metering;
pub mod ops;
mod registry;
pub mod retry;
pub mod runtime;
pub mod settings;
mod signing;
mod transport;
mod upload;
mod xml;

pub use client::{ClientOptions, S3Client};
pub use credentials::{CredentialSource, Credentials, Environment};
pub use download::{ByteStream, GetObjectOutput};
pub use error::{Error, RequestContext, S3Failure};
pub use metering::{MeteringSnapshot, OperationStats, Outcome};
pub use ops::complete_multipart_upload::{CompleteMultipartUploadOutput, CompletedPart};
pub use ops::copy_object::CopyObjectOutput;
pub use ops::delete_objects::{DeleteError, DeleteObjectsOutput};
pub use ops::get_object::ByteRange;
pub use ops::head_bucket::HeadBucketOutput;
pub use ops::list_multipart_uploads::{
    ListMultipartUploadsOutput, ListMultipartUploadsParams, MultipartUpload,
};
pub use ops::list_objects_v2::{ListObjectsV2Output, ListObjectsV2Params, ObjectSummary};
pub use ops::put_object::PutObjectOutput;
pub use ops::{ETag, EtagQuoting, ObjectMeta, Operation, PayloadSha256, PutMode};
pub use registry::ClientRegistry;
pub use retry::RetryPolicy;
pub use runtime::Runtime;
pub use settings::{
    ClientConfig, ClientSettings, Protocol, ProxySettings, SecureClientSettings, SecureValue,
};
pub use upload::UploadOptions;

/// Reads an S3 error answer the way every operation does: whether the body is an `<Error>`
/// document (which turns even a 200 into a failure), and the [`Error`] the client returns
/// for it (on a placeholder bucket and key) with the region hint and `Retry-After` delay
/// it acts on. Pure, no I/O.
///
/// Not a stable API: it exists so that the fuzz targets under `fuzz/` drive the real
/// parsing path with hostile answers.
#[doc(hidden)]
pub fn interpret_error_answer(
    operation: Operation,
    status: u16,
    headers: &http::HeaderMap,
    body: &[u8],
    region: &str,
    now: std::time::SystemTime,
) -> (bool, Error, Option<String>, Option<std::time::Duration>) {
    let is_error_document = xml::root_element(body).as_deref() == Some("Error");
    let ctx = RequestContext {
        operation,
        bucket: "bucket".to_owned(),
        key: (!operation.is_bucket_level()).then(|| "key".to_owned()),
        endpoint: "http://127.0.0.1".to_owned(),
    };
    let failure = client::Failure::from_answer(&ctx, status, headers, body, region, now);
    (
        is_error_document,
        failure.error,
        failure.region_hint,
        failure.retry_after,
    )
}
