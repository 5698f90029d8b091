//! Test fixtures for coffer (a dev-only crate).
//!
//! It will hold: an in-process fake S3 server with independent SigV4 verification and
//! scriptable fault injection, harnesses that start real Garage and Ceph radosgw servers on
//! loopback, and a deterministic dataset generator.

pub mod ceph;
pub mod dataset;
mod error;
pub mod fake_s3;
pub mod garage;
pub mod raw_s3;
mod target;
pub mod tools;

pub use error::{HarnessError, Result};
pub use target::S3Target;
