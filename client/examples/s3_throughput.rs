//! Measures upload and download throughput of this client against a real S3 server, for the
//! benchmark notes (e.g. next to `rclone copy` on the same Garage).
//!
//! ```text
//! AWS_ACCESS_KEY_ID=GK… AWS_SECRET_ACCESS_KEY=… \
//!   cargo run --release -p coffer-client --example s3_throughput -- \
//!   http://127.0.0.1:3900 garage my-bucket 1024 [part_mib] [parts_in_flight]
//! ```
//!
//! Credentials come from the usual chain (environment, then `~/.aws`). The data is generated
//! on the fly (never held whole in memory) and the download is streamed and discarded after
//! a byte count.

#![allow(
    clippy::print_stdout,
    clippy::disallowed_methods,
    clippy::cast_precision_loss
)]

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use coffer_client::{ClientOptions, ClientRegistry, Environment, PutMode, UploadOptions};
use futures::StreamExt as _;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        return Err(
            "usage: s3_throughput ENDPOINT REGION BUCKET SIZE_MIB [PART_MIB] [PARTS_IN_FLIGHT]"
                .into(),
        );
    }
    let size_mib: u64 = args[3].parse()?;
    let part_mib: usize = args.get(4).map_or(Ok(100), |s| s.parse())?;
    let in_flight: usize = args.get(5).map_or(Ok(4), |s| s.parse())?;
    let mut flat = BTreeMap::new();
    flat.insert("s3.client.default.endpoint".to_owned(), args[0].clone());
    flat.insert("s3.client.default.region".to_owned(), args[1].clone());
    flat.insert(
        "s3.client.default.path_style_access".to_owned(),
        "true".to_owned(),
    );
    let registry = ClientRegistry::new(
        &flat,
        &BTreeMap::new(),
        &Environment::from_process(),
        ClientOptions::default(),
    )?;
    let client = registry.client("default")?;
    let bucket = &args[2];
    let key = format!("coffer-throughput/{size_mib}MiB");
    let length = size_mib << 20;

    // A deterministic, cheap source in 1 MiB chunks.
    let chunk = Bytes::from(
        (0..(1u32 << 20))
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect::<Vec<u8>>(),
    );
    let source =
        futures::stream::iter((0..size_mib).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let options = UploadOptions::default()
        .with_mode(PutMode::Overwrite)
        .with_part_size(part_mib << 20)
        .with_parts_in_flight(in_flight);
    let started = Instant::now();
    client
        .upload(bucket, &key, length, source, &options)
        .await?;
    let up = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut body = client.get_object(bucket, &key, None).await?.body;
    let mut received = 0u64;
    while let Some(chunk) = body.next().await {
        received += chunk?.len() as u64;
    }
    let down = started.elapsed().as_secs_f64();
    assert_eq!(received, length);
    client.delete_object(bucket, &key).await?;

    let mib = size_mib as f64;
    println!(
        "upload   {size_mib} MiB in {up:.2} s = {:.1} MiB/s (part {part_mib} MiB x {in_flight} in flight)",
        mib / up
    );
    println!(
        "download {size_mib} MiB in {down:.2} s = {:.1} MiB/s",
        mib / down
    );
    println!("metering: {:#?}", client.metering());
    Ok(())
}
