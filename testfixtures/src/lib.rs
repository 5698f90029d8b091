//! Test fixtures for coffer (a dev-only crate).
//!
//! It holds: an in-process fake S3 server with independent SigV4 verification and
//! scriptable fault injection, harnesses that start real Garage and Ceph radosgw servers on
//! loopback, a counting proxy that measures the requests and bytes of any S3 client, and a
//! deterministic dataset generator.

pub mod ceph;
pub mod counting_proxy;
pub mod dataset;
mod error;
pub mod fake_s3;
pub mod garage;
pub mod raw_s3;
mod target;
pub mod tools;

pub use error::{HarnessError, Result};
pub use target::S3Target;
