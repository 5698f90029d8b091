//! The S3 client's answer parsers (`client/src/ops/*.rs`, `client/src/xml.rs`): every XML
//! body parser, the header parsers, and the reading of error answers (the `<Error>`
//! document, its classification, region hints and `Retry-After`).
//!
//! Input: `[selector][…]`. Body parsers take the rest as the body. Header parsers and the
//! error answer take `[status, 2 bytes][header block length][header block][body]`, the
//! header block being `name: value` lines.
//!
//! Properties: every answer, however hostile, is `Ok` or `Err` (never a panic, never an
//! allocation above the cap).
#![no_main]

use std::time::{Duration, SystemTime};

use coffer_client::Operation;
use coffer_client::ops::{
    complete_multipart_upload, copy_object, create_multipart_upload, delete_objects, get_object,
    head_bucket, head_object, list_multipart_uploads, list_objects_v2, put_object, upload_part,
};
use coffer_fuzz::{CappedAlloc, Input};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let selector = input.byte();
    match selector % 8 {
        0 => drop(list_objects_v2::parse(input.rest())),
        1 => drop(list_multipart_uploads::parse(input.rest())),
        2 => drop(delete_objects::parse(input.rest())),
        3 => drop(complete_multipart_upload::parse(input.rest())),
        4 => drop(copy_object::parse(input.rest())),
        5 => drop(create_multipart_upload::parse(input.rest())),
        6 => {
            let (status, headers, _) = answer(&mut input);
            drop(get_object::parse(status, &headers));
            drop(head_object::parse(&headers));
            drop(put_object::parse(&headers));
            drop(upload_part::parse(&headers));
            drop(head_bucket::parse(&headers));
        }
        _ => {
            let op = Operation::ALL[usize::from(selector / 8) % Operation::ALL.len()];
            let (status, headers, body) = answer(&mut input);
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
            let (_, error, _, _) =
                coffer_client::interpret_error_answer(op, status, &headers, body, "us-east-1", now);
            // Rendering the error must not panic either.
            let _ = error.to_string();
            let _ = format!("{error:?}");
        }
    }
});

fn answer<'a>(input: &mut Input<'a>) -> (u16, HeaderMap, &'a [u8]) {
    let status = u16::from_be_bytes(input.array::<2>());
    let block = input.short();
    let mut headers = HeaderMap::new();
    for line in block.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    let body = std::mem::replace(input, Input::new(&[])).rest();
    (status, headers, body)
}
