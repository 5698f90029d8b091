//! Helpers shared by the repository crate's integration tests.
#![allow(dead_code)]

pub mod conformance;
pub mod crash;
pub mod lifecycle;

use std::sync::Arc;

use coffer_client::{
    ClientConfig, ClientOptions, ClientSettings, Credentials, Environment, RetryPolicy, S3Client,
    SecureClientSettings,
};
use coffer_repository::store::S3BlobStore;
use coffer_testfixtures::S3Target;

/// An S3 store on `target` under `base`, with the client's standard retries or, when given,
/// fast test retries.
pub fn s3_store(target: &S3Target, base: &str, test_retries: Option<u32>) -> Arc<S3BlobStore> {
    let mut settings = ClientSettings::default();
    settings.endpoint = Some(target.endpoint.clone());
    settings.region = Some(target.region.clone());
    let mut secure = SecureClientSettings::default();
    secure.credentials = Some(Credentials::new(
        &target.access_key,
        target.secret_key.clone(),
        None,
    ));
    let options = match test_retries {
        Some(n) => ClientOptions::default().with_retry(RetryPolicy::for_test(n)),
        None => ClientOptions::default(),
    };
    let client = S3Client::new(
        &ClientConfig::new("test", settings, secure),
        &Environment::empty(),
        options,
    )
    .unwrap();
    Arc::new(S3BlobStore::new(client, target.bucket.clone(), base))
}
