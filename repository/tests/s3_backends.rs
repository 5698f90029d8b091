//! The repository layer on real S3 servers and the fake: the BlobStore contract, then the
//! whole snapshot lifecycle. Garage ignores conditional writes (the lease takes its fallback
//! path); Ceph radosgw and the fake honour them (the conditional lease).

mod common;

use std::sync::Arc;

use coffer_repository::store::S3BlobStore;
use coffer_repository::{BlobStore, Capabilities};
use coffer_testfixtures::S3Target;

fn store(t: &S3Target, base: &str) -> Arc<S3BlobStore> {
    common::s3_store(t, base, None)
}

async fn probe(store: &Arc<S3BlobStore>) -> Capabilities {
    store.calibrate("calibration/").await.unwrap();
    coffer_repository::verify::probe_capabilities(store.as_ref())
        .await
        .unwrap()
}

async fn both(t: &S3Target, expected: Capabilities) {
    let s = store(t, "conformance");
    let caps = probe(&s).await;
    assert_eq!(caps, expected, "capabilities of {}", s.location());
    common::conformance::run(Arc::clone(&s) as Arc<dyn BlobStore>, caps, "conf/").await;
    let s = store(t, "/lifecycle/base/");
    assert_eq!(probe(&s).await, expected);
    common::lifecycle::run(s as Arc<dyn BlobStore>, caps).await;
}

const STRICT: Capabilities = Capabilities {
    conditional_create: true,
    conditional_update: true,
};
const LAX: Capabilities = Capabilities {
    conditional_create: false,
    conditional_update: false,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_s3() {
    let fake = coffer_testfixtures::fake_s3::FakeS3::start_default()
        .await
        .unwrap();
    both(&fake.target(), STRICT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_fallback_lease() {
    let garage = coffer_testfixtures::garage::Garage::start().await.unwrap();
    both(&garage.target(), LAX).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ceph_conditional_lease() {
    let ceph = coffer_testfixtures::ceph::Ceph::shared().await.unwrap();
    let t = ceph.new_bucket().await.unwrap();
    both(&t, STRICT).await;
}
