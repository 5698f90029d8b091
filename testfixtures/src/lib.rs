//! Test fixtures for coffer (a dev-only crate).
//!
//! It will hold: an in-process fake S3 server with independent SigV4 verification and
//! scriptable fault injection, harnesses that start real Garage and Ceph radosgw servers on
//! loopback, and a deterministic dataset generator.
