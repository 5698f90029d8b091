//! coffer's repository layer.
//!
//! It will hold: the `BlobStore` port with fs, s3 and memory adapters, the Elasticsearch-shaped
//! repository format in coffer's own encoding, generations and the single-writer lease,
//! incremental deduplicated snapshots, restore, delete, cleanup, clone and verify.
