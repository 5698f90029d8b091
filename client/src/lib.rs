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
pub use ops::{ETag, EtagQuoting, ObjectMeta, Operation, PutMode};
pub use registry::ClientRegistry;
pub use retry::RetryPolicy;
pub use runtime::Runtime;
pub use settings::{
    ClientConfig, ClientSettings, Protocol, ProxySettings, SecureClientSettings, SecureValue,
};
pub use upload::UploadOptions;
