//! Body integrity headers: `Content-MD5` and `x-amz-checksum-*`, plus S3's ETag arithmetic.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use md5::{Digest, Md5};
use sha2::Sha256;

use super::error::{ErrorCode, S3Error};

/// The `x-amz-checksum-*` headers AWS defines.
pub const CHECKSUM_HEADERS: &[&str] = &[
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
];

/// Whether the request carries `Content-MD5` or any `x-amz-checksum-*` header (what AWS
/// requires on DeleteObjects).
pub fn has_integrity_header(headers: &HeaderMap) -> bool {
    headers.contains_key("content-md5") || CHECKSUM_HEADERS.iter().any(|h| headers.contains_key(*h))
}

/// MD5 digest.
pub fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

/// A single-part ETag: the quoted hex MD5 of the body.
pub fn etag_of(data: &[u8]) -> String {
    format!("\"{}\"", hex::encode(md5(data)))
}

/// A multipart ETag: the quoted hex MD5 of the concatenated binary part MD5s, then `-N`.
pub fn multipart_etag(part_md5s: &[[u8; 16]]) -> String {
    let mut hasher = Md5::new();
    for digest in part_md5s {
        hasher.update(digest);
    }
    format!("\"{}-{}\"", hex::encode(hasher.finalize()), part_md5s.len())
}

/// The binary MD5 inside a single-part quoted ETag, if it is one.
pub fn etag_md5(etag: &str) -> Option<[u8; 16]> {
    let hex_part = normalize_etag(etag);
    let bytes = hex::decode(hex_part).ok()?;
    bytes.try_into().ok()
}

/// An ETag without quotes and without a weak `W/` prefix, for comparisons (clients send
/// either form; Ceph 16 wants it unquoted).
pub fn normalize_etag(etag: &str) -> &str {
    let etag = etag.trim();
    let etag = etag.strip_prefix("W/").unwrap_or(etag);
    etag.strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(etag)
}

/// Whether an `If-Match` / `If-None-Match` list (`*` or comma-separated ETags) matches.
pub fn etag_list_matches(list: &str, etag: &str) -> bool {
    let etag = normalize_etag(etag);
    list.split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || normalize_etag(candidate) == etag)
}

const fn crc32_table(poly: u32) -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        #[allow(clippy::cast_possible_truncation)]
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ poly
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// Reflected CRC-32 (IEEE 802.3), as in `x-amz-checksum-crc32`.
static CRC32: [u32; 256] = crc32_table(0xEDB8_8320);
/// Reflected CRC-32C (Castagnoli), as in `x-amz-checksum-crc32c`.
static CRC32C: [u32; 256] = crc32_table(0x82F6_3B78);

fn crc(table: &[u32; 256], data: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for byte in data {
        crc = table[((crc ^ u32::from(*byte)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// CRC-32 of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    crc(&CRC32, data)
}

/// CRC-32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc(&CRC32C, data)
}

fn decode_digest(header: &str, value: &str, len: usize) -> Result<Vec<u8>, S3Error> {
    let code = if header == "content-md5" {
        ErrorCode::InvalidDigest
    } else {
        ErrorCode::InvalidRequest
    };
    STANDARD
        .decode(value.trim())
        .ok()
        .filter(|d| d.len() == len)
        .ok_or_else(|| {
            S3Error::with_message(code, format!("Value for {header} header is invalid."))
        })
}

/// Verifies `Content-MD5` and the `x-amz-checksum-*` headers the fake can compute (CRC-32,
/// CRC-32C, SHA-256) against `body`. CRC-64/NVME and SHA-1 are accepted unverified.
pub fn verify_body(headers: &HeaderMap, body: &[u8]) -> Result<(), S3Error> {
    let value = |name: &str| -> Result<Option<String>, S3Error> {
        headers
            .get(name)
            .map(|v| {
                v.to_str().map(str::to_owned).map_err(|_| {
                    S3Error::with_message(
                        ErrorCode::InvalidDigest,
                        format!("Value for {name} header is invalid."),
                    )
                })
            })
            .transpose()
    };
    if let Some(md5_b64) = value("content-md5")? {
        let sent = decode_digest("content-md5", &md5_b64, 16)?;
        if sent[..] != md5(body)[..] {
            return Err(S3Error::new(ErrorCode::BadDigest)
                .detail("ExpectedDigest", md5_b64)
                .detail("CalculatedDigest", STANDARD.encode(md5(body))));
        }
    }
    let mismatch = |algo: &str| {
        S3Error::with_message(
            ErrorCode::BadDigest,
            format!("The {algo} you specified did not match the calculated checksum."),
        )
    };
    if let Some(v) = value("x-amz-checksum-sha256")? {
        let sent = decode_digest("x-amz-checksum-sha256", &v, 32)?;
        if sent[..] != Sha256::digest(body)[..] {
            return Err(mismatch("SHA256"));
        }
    }
    if let Some(v) = value("x-amz-checksum-crc32")? {
        let sent = decode_digest("x-amz-checksum-crc32", &v, 4)?;
        if sent[..] != crc32(body).to_be_bytes() {
            return Err(mismatch("CRC32"));
        }
    }
    if let Some(v) = value("x-amz-checksum-crc32c")? {
        let sent = decode_digest("x-amz-checksum-crc32c", &v, 4)?;
        if sent[..] != crc32c(body).to_be_bytes() {
            return Err(mismatch("CRC32C"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_values() {
        // The standard check input "123456789".
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn etags() {
        assert_eq!(etag_of(b""), "\"d41d8cd98f00b204e9800998ecf8427e\"");
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        assert_eq!(normalize_etag("abc"), "abc");
        assert!(etag_list_matches("\"x\", abc", "\"abc\""));
        assert!(etag_list_matches("*", "\"abc\""));
        assert!(!etag_list_matches("\"abd\"", "\"abc\""));
        // Two parts whose MD5s are those of "a" and "b".
        let etag = multipart_etag(&[md5(b"a"), md5(b"b")]);
        let mut concat = md5(b"a").to_vec();
        concat.extend_from_slice(&md5(b"b"));
        assert_eq!(etag, format!("\"{}-2\"", hex::encode(md5(&concat))));
        assert_eq!(etag_md5(&etag_of(b"a")), Some(md5(b"a")));
        assert_eq!(etag_md5(&etag), None);
    }

    #[test]
    fn body_verification() {
        let body = b"hello";
        let mut headers = HeaderMap::new();
        headers.insert("content-md5", STANDARD.encode(md5(body)).parse().unwrap());
        headers.insert(
            "x-amz-checksum-crc32",
            STANDARD.encode(crc32(body).to_be_bytes()).parse().unwrap(),
        );
        headers.insert(
            "x-amz-checksum-sha256",
            STANDARD.encode(Sha256::digest(body)).parse().unwrap(),
        );
        assert!(verify_body(&headers, body).is_ok());
        assert_eq!(
            verify_body(&headers, b"other").unwrap_err().code,
            ErrorCode::BadDigest
        );
        headers.insert("content-md5", "not base64!".parse().unwrap());
        assert_eq!(
            verify_body(&headers, body).unwrap_err().code,
            ErrorCode::InvalidDigest
        );
        assert!(has_integrity_header(&headers));
        assert!(!has_integrity_header(&HeaderMap::new()));
    }
}
