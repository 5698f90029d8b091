//! Helpers shared by the repository crate's integration tests.
#![allow(dead_code)]

pub mod conformance;
pub mod crash;
pub mod lifecycle;
