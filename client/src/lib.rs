//! coffer's own S3 client.
//!
//! It will hold: per-client settings, the credential chain (keystore, environment, `~/.aws`),
//! SigV4 signing with an injected clock, one module per S3 operation (request builder,
//! response DTO and parser), retries with full jitter and adaptive concurrency, the rustls
//! transport with per-client CA bundles, and the registry of named clients.
