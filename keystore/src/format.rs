//! The keystore file format, version 1 (see `docs/keystore-format.md`).
//!
//! ```text
//! offset  size  field
//!      0     8  magic "COFFERKS"
//!      8     2  format version, u16 big-endian (1)
//!     10     1  flags: bit 0 = password-protected; other bits must be 0
//!     11     1  KDF id: 1 = Argon2id (v0x13)
//!     12     4  Argon2 memory cost in KiB, u32 BE
//!     16     4  Argon2 time cost (passes), u32 BE
//!     20     4  Argon2 parallelism (lanes), u32 BE
//!     24    32  salt (fresh on every save)
//!     56    12  AES-256-GCM nonce (fresh on every save)
//!     68    32  password verifier
//!    100     8  ciphertext length N (including the 16-byte tag), u64 BE
//!    108     N  AES-256-GCM ciphertext of the payload; AAD = bytes 0..108
//!  108+N    32  SHA-256 of bytes 0..108+N
//! ```
//!
//! The trailing digest catches accidental damage and truncation before any key derivation;
//! the verifier separates a wrong password from tampering; the AAD binds the header (KDF
//! parameters, flags) to the ciphertext so neither can be swapped.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::KeystoreError;
use crate::crypto::{self, KEY_LEN, NONCE_LEN, SALT_LEN, TAG_LEN};
use crate::setting::{SecureSetting, validate_setting_name};

pub(crate) const MAGIC: &[u8; 8] = b"COFFERKS";
/// The format version this build writes, and the newest it reads.
pub const CURRENT_VERSION: u16 = 1;
pub(crate) const HEADER_LEN: usize = 108;
const DIGEST_LEN: usize = 32;
const KDF_ARGON2ID: u8 = 1;
const FLAG_PASSWORD: u8 = 0b0000_0001;
const KIND_STRING: u8 = 0;
const KIND_FILE: u8 = 1;

// Bounds on parameters read from a file, so a crafted header cannot make us allocate
// gigabytes or spin for minutes before the password check. Memory is capped at 1 GiB, and
// memory × passes at 4 GiB (64× what writers use): the old bounds (4 GiB × 64 passes) let a
// hostile file cost 4 GiB of RAM and minutes of CPU on every load (docs/fuzzing.md).
const MAX_M_COST_KIB: u32 = 1024 * 1024;
const MAX_WORK_KIB: u64 = 4 * 1024 * 1024;
const MAX_T_COST: u32 = 64;
const MAX_P_COST: u32 = 64;

/// Argon2id cost parameters, stored in each file so they can be raised without breaking
/// old keystores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Number of passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl KdfParams {
    /// RFC 9106's second recommended setting with one lane: 64 MiB, 3 passes, above OWASP's
    /// minimums for Argon2id.
    pub const DEFAULT: Self = Self {
        m_cost_kib: 64 * 1024,
        t_cost: 3,
        p_cost: 1,
    };

    fn is_within_bounds(self) -> bool {
        (1..=MAX_P_COST).contains(&self.p_cost)
            && (8 * self.p_cost..=MAX_M_COST_KIB).contains(&self.m_cost_kib)
            && (1..=MAX_T_COST).contains(&self.t_cost)
            && u64::from(self.m_cost_kib) * u64::from(self.t_cost) <= MAX_WORK_KIB
    }
}

/// The plaintext fields of a file that can be read without the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) version: u16,
    pub(crate) password_protected: bool,
    pub(crate) kdf: KdfParams,
    pub(crate) salt: [u8; SALT_LEN],
    pub(crate) nonce: [u8; NONCE_LEN],
    pub(crate) verifier: [u8; KEY_LEN],
    pub(crate) ciphertext_len: u64,
}

impl Header {
    fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..8].copy_from_slice(MAGIC);
        out[8..10].copy_from_slice(&self.version.to_be_bytes());
        out[10] = if self.password_protected {
            FLAG_PASSWORD
        } else {
            0
        };
        out[11] = KDF_ARGON2ID;
        out[12..16].copy_from_slice(&self.kdf.m_cost_kib.to_be_bytes());
        out[16..20].copy_from_slice(&self.kdf.t_cost.to_be_bytes());
        out[20..24].copy_from_slice(&self.kdf.p_cost.to_be_bytes());
        out[24..56].copy_from_slice(&self.salt);
        out[56..68].copy_from_slice(&self.nonce);
        out[68..100].copy_from_slice(&self.verifier);
        out[100..108].copy_from_slice(&self.ciphertext_len.to_be_bytes());
        out
    }

    fn parse(b: &[u8; HEADER_LEN]) -> Result<Self, KeystoreError> {
        let u32_at = |at: usize| u32::from_be_bytes(array(&b[at..at + 4]));
        let version = u16::from_be_bytes([b[8], b[9]]);
        if version == 0 {
            return Err(KeystoreError::corrupted("format version 0"));
        }
        if version > CURRENT_VERSION {
            return Err(KeystoreError::UnsupportedVersion {
                found: version,
                supported: CURRENT_VERSION,
            });
        }
        if b[10] & !FLAG_PASSWORD != 0 {
            return Err(KeystoreError::corrupted("unknown flags"));
        }
        if b[11] != KDF_ARGON2ID {
            return Err(KeystoreError::corrupted("unknown key derivation function"));
        }
        let kdf = KdfParams {
            m_cost_kib: u32_at(12),
            t_cost: u32_at(16),
            p_cost: u32_at(20),
        };
        if !kdf.is_within_bounds() {
            return Err(KeystoreError::corrupted(
                "key derivation parameters out of bounds",
            ));
        }
        Ok(Self {
            version,
            password_protected: b[10] & FLAG_PASSWORD != 0,
            kdf,
            salt: array(&b[24..56]),
            nonce: array(&b[56..68]),
            verifier: array(&b[68..100]),
            ciphertext_len: u64::from_be_bytes(array(&b[100..108])),
        })
    }
}

/// A fixed-size copy of a slice whose length the caller has already established.
fn array<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(s);
    out
}

/// Checks the magic, the length and the trailing digest, then parses the header. Needs no
/// password, so `has-passwd` can answer without one.
pub(crate) fn read_header(bytes: &[u8]) -> Result<Header, KeystoreError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(KeystoreError::corrupted(
            "not a coffer keystore (bad magic)",
        ));
    }
    if bytes.len() < HEADER_LEN + TAG_LEN + DIGEST_LEN {
        return Err(KeystoreError::corrupted("file too short"));
    }
    let (body, digest) = bytes.split_at(bytes.len() - DIGEST_LEN);
    if !bool::from(Sha256::digest(body).as_slice().ct_eq(digest)) {
        return Err(KeystoreError::corrupted("checksum mismatch"));
    }
    let header = Header::parse(&array(&body[..HEADER_LEN]))?;
    if header.ciphertext_len != (body.len() - HEADER_LEN) as u64 {
        return Err(KeystoreError::corrupted("ciphertext length mismatch"));
    }
    Ok(header)
}

/// Decrypts a whole file. Damage is reported as `Corrupted`, a wrong password as
/// `WrongPassword`, and a newer format as `UnsupportedVersion`.
pub(crate) fn decode(
    bytes: &[u8],
    password: &[u8],
) -> Result<(Header, Vec<(String, SecureSetting)>), KeystoreError> {
    let header = read_header(bytes)?;
    let keys = crypto::derive(password, &header.salt, header.kdf)?;
    if !bool::from(keys.verifier.ct_eq(&header.verifier)) {
        return Err(KeystoreError::WrongPassword);
    }
    let body = &bytes[..bytes.len() - DIGEST_LEN];
    let plaintext = crypto::open(
        &keys.encryption,
        &header.nonce,
        &body[..HEADER_LEN],
        &body[HEADER_LEN..],
    )?;
    let entries = decode_payload(&plaintext)?;
    Ok((header, entries))
}

/// Encrypts entries into a complete file. Salt and nonce are parameters so that tests are
/// deterministic; callers pass fresh random values on every save.
pub(crate) fn encode(
    entries: &[(&str, &SecureSetting)],
    password: &[u8],
    kdf: KdfParams,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
) -> Result<Vec<u8>, KeystoreError> {
    let payload = encode_payload(entries)?;
    let keys = crypto::derive(password, &salt, kdf)?;
    let header = Header {
        version: CURRENT_VERSION,
        password_protected: !password.is_empty(),
        kdf,
        salt,
        nonce,
        verifier: keys.verifier,
        ciphertext_len: (payload.len() + TAG_LEN) as u64,
    };
    let header_bytes = header.to_bytes();
    let ciphertext = crypto::seal(&keys.encryption, &nonce, &header_bytes, &payload);
    let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len() + DIGEST_LEN);
    out.extend_from_slice(&header_bytes);
    out.extend_from_slice(&ciphertext);
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    Ok(out)
}

/// Payload: u32 BE count, then per entry u16 BE name length, name (ASCII), u8 kind
/// (0 string, 1 file), u32 BE value length, value. Names strictly ascending.
fn encode_payload(entries: &[(&str, &SecureSetting)]) -> Result<Zeroizing<Vec<u8>>, KeystoreError> {
    let mut out = Zeroizing::new(Vec::new());
    let count =
        u32::try_from(entries.len()).map_err(|_| KeystoreError::TooLarge("too many settings"))?;
    out.extend_from_slice(&count.to_be_bytes());
    for (name, value) in entries {
        validate_setting_name(name)?;
        let name_len = u16::try_from(name.len()).map_err(|_| KeystoreError::TooLarge("name"))?;
        let bytes = value.expose_bytes();
        let value_len =
            u32::try_from(bytes.len()).map_err(|_| KeystoreError::TooLarge("value over 4 GiB"))?;
        out.extend_from_slice(&name_len.to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(if value.is_file() {
            KIND_FILE
        } else {
            KIND_STRING
        });
        out.extend_from_slice(&value_len.to_be_bytes());
        out.extend_from_slice(bytes);
    }
    Ok(out)
}

fn decode_payload(p: &[u8]) -> Result<Vec<(String, SecureSetting)>, KeystoreError> {
    let bad = || KeystoreError::corrupted("malformed payload");
    let mut cur = p;
    let mut take = |n: usize| -> Result<&[u8], KeystoreError> {
        if cur.len() < n {
            return Err(bad());
        }
        let (head, tail) = cur.split_at(n);
        cur = tail;
        Ok(head)
    };
    let count = u32::from_be_bytes(array(take(4)?));
    let mut entries: Vec<(String, SecureSetting)> = Vec::new();
    for _ in 0..count {
        let name_len = u16::from_be_bytes(array(take(2)?));
        let name = std::str::from_utf8(take(usize::from(name_len))?).map_err(|_| bad())?;
        validate_setting_name(name).map_err(|_| bad())?;
        if entries
            .last()
            .is_some_and(|(prev, _)| prev.as_str() >= name)
        {
            return Err(bad());
        }
        let kind = take(1)?[0];
        let len = u32::from_be_bytes(array(take(4)?));
        let value = take(usize::try_from(len).map_err(|_| bad())?)?;
        let setting = match kind {
            KIND_STRING => {
                SecureSetting::string(std::str::from_utf8(value).map_err(|_| bad())?.to_owned())
            }
            KIND_FILE => SecureSetting::file(value.to_vec()),
            _ => return Err(bad()),
        };
        entries.push((name.to_owned(), setting));
    }
    if !cur.is_empty() {
        return Err(bad());
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Cheap parameters keep the exhaustive byte-flip test fast; the format is the same.
    const FAST: KdfParams = KdfParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    fn sample(password: &[u8]) -> Vec<u8> {
        let a = SecureSetting::string("AKIAEXAMPLE");
        let b = SecureSetting::file(vec![0, 1, 2, 255]);
        encode(
            &[("a.key", &a), ("b.file", &b)],
            password,
            FAST,
            [7; SALT_LEN],
            [9; NONCE_LEN],
        )
        .unwrap()
    }

    #[test]
    fn round_trip() {
        let bytes = sample(b"pw");
        let (header, entries) = decode(&bytes, b"pw").unwrap();
        assert!(header.password_protected);
        assert_eq!(header.version, CURRENT_VERSION);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0, "a.key");
        assert_eq!(entries[0].1.expose_str(), Some("AKIAEXAMPLE"));
        assert!(entries[1].1.is_file());
        assert_eq!(entries[1].1.expose_bytes(), &[0, 1, 2, 255]);
    }

    #[test]
    fn empty_password_is_not_protected_but_still_encrypted() {
        let bytes = sample(b"");
        assert!(!read_header(&bytes).unwrap().password_protected);
        assert!(!bytes.windows(11).any(|w| w == b"AKIAEXAMPLE"));
        decode(&bytes, b"").unwrap();
        assert!(matches!(
            decode(&bytes, b"x"),
            Err(KeystoreError::WrongPassword)
        ));
    }

    #[test]
    fn wrong_password() {
        assert!(matches!(
            decode(&sample(b"right"), b"wrong"),
            Err(KeystoreError::WrongPassword)
        ));
    }

    #[test]
    fn every_flipped_byte_is_detected_as_corruption() {
        let bytes = sample(b"pw");
        for i in 0..bytes.len() {
            for bit in [0x01u8, 0x80] {
                let mut damaged = bytes.clone();
                damaged[i] ^= bit;
                match decode(&damaged, b"pw") {
                    Err(KeystoreError::Corrupted { .. }) => {}
                    other => panic!("byte {i} bit {bit:#x}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn tampering_that_fixes_the_checksum_is_still_detected() {
        // An attacker who recomputes the trailing digest still cannot forge the GCM tag, and
        // the verifier tells this apart from a wrong password.
        let mut bytes = sample(b"pw");
        bytes.truncate(bytes.len() - DIGEST_LEN);
        bytes[HEADER_LEN + 3] ^= 1;
        let digest = Sha256::digest(&bytes);
        bytes.extend_from_slice(&digest);
        assert!(matches!(
            decode(&bytes, b"pw"),
            Err(KeystoreError::Corrupted { .. })
        ));
    }

    #[test]
    fn header_swap_is_detected_by_the_aad() {
        // Clearing the password flag and re-sealing the digest must not pass as valid.
        let mut bytes = sample(b"pw");
        bytes.truncate(bytes.len() - DIGEST_LEN);
        bytes[10] = 0;
        let digest = Sha256::digest(&bytes);
        bytes.extend_from_slice(&digest);
        assert!(matches!(
            decode(&bytes, b"pw"),
            Err(KeystoreError::Corrupted { .. })
        ));
    }

    #[test]
    fn every_truncation_is_detected() {
        let bytes = sample(b"pw");
        for len in 0..bytes.len() {
            assert!(
                matches!(
                    decode(&bytes[..len], b"pw"),
                    Err(KeystoreError::Corrupted { .. })
                ),
                "length {len}"
            );
        }
    }

    #[test]
    fn future_version_is_refused_with_its_number() {
        let mut bytes = sample(b"pw");
        bytes.truncate(bytes.len() - DIGEST_LEN);
        bytes[8..10].copy_from_slice(&2u16.to_be_bytes());
        let digest = Sha256::digest(&bytes);
        bytes.extend_from_slice(&digest);
        match decode(&bytes, b"pw") {
            Err(KeystoreError::UnsupportedVersion {
                found: 2,
                supported: 1,
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn absurd_kdf_parameters_are_refused_before_deriving() {
        let mut bytes = sample(b"pw");
        bytes.truncate(bytes.len() - DIGEST_LEN);
        bytes[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
        let digest = Sha256::digest(&bytes);
        bytes.extend_from_slice(&digest);
        assert!(matches!(
            decode(&bytes, b"pw"),
            Err(KeystoreError::Corrupted { .. })
        ));
    }

    fn with_kdf(m: u32, t: u32, p: u32) -> Vec<u8> {
        let mut bytes = sample(b"pw");
        bytes.truncate(bytes.len() - DIGEST_LEN);
        bytes[12..16].copy_from_slice(&m.to_be_bytes());
        bytes[16..20].copy_from_slice(&t.to_be_bytes());
        bytes[20..24].copy_from_slice(&p.to_be_bytes());
        let digest = Sha256::digest(&bytes);
        bytes.extend_from_slice(&digest);
        bytes
    }

    #[test]
    fn costly_kdf_parameters_from_a_file_are_refused_before_deriving() {
        // Regression (docs/fuzzing.md): 4 GiB of memory, or 1 GiB × 64 passes, used to be accepted
        // and derived on load. Each must be refused from the header alone (read_header runs
        // no key derivation), quickly.
        let started = std::time::Instant::now();
        for (m, t, p) in [
            (4 * 1024 * 1024, 1, 1),
            (1024 * 1024 + 1, 1, 1),
            (1024 * 1024, 5, 1),
            (131_072, 64, 1),
            (8, 1, 0),
            (8 * 65, 1, 65),
            // 8 × p overflowed u32 (a debug-build panic) before p's own bound was checked.
            (64, 1, 0x2000_0000),
            (u32::MAX, u32::MAX, u32::MAX),
        ] {
            let bytes = with_kdf(m, t, p);
            assert!(
                matches!(read_header(&bytes), Err(KeystoreError::Corrupted { .. })),
                "m={m} t={t} p={p}"
            );
            assert!(matches!(
                decode(&bytes, b"pw"),
                Err(KeystoreError::Corrupted { .. })
            ));
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // The largest accepted values still parse (the derivation itself is not run here).
        for (m, t, p) in [(1024 * 1024, 4, 1), (4096, 64, 64), (65_536, 3, 1)] {
            assert_eq!(
                read_header(&with_kdf(m, t, p)).unwrap().kdf,
                KdfParams {
                    m_cost_kib: m,
                    t_cost: t,
                    p_cost: p
                }
            );
        }
    }

    #[test]
    fn golden_layout() {
        let bytes = sample(b"pw");
        assert_eq!(&bytes[0..8], b"COFFERKS");
        assert_eq!(&bytes[8..10], &[0, 1]);
        assert_eq!(bytes[10], 1);
        assert_eq!(bytes[11], 1);
        assert_eq!(&bytes[12..16], &64u32.to_be_bytes());
        assert_eq!(&bytes[24..56], &[7; 32]);
        assert_eq!(&bytes[56..68], &[9; 12]);
        let n = u64::from_be_bytes(bytes[100..108].try_into().unwrap());
        assert_eq!(bytes.len() as u64, 108 + n + 32);
    }

    proptest::proptest! {
        #[test]
        fn payload_round_trips(values in proptest::collection::btree_map("[a-z0-9_.-]{1,20}", proptest::collection::vec(proptest::num::u8::ANY, 0..64), 0..8)) {
            let settings: Vec<(String, SecureSetting)> =
                values.iter().map(|(k, v)| (k.clone(), SecureSetting::file(v.clone()))).collect();
            let refs: Vec<(&str, &SecureSetting)> = settings.iter().map(|(k, v)| (k.as_str(), v)).collect();
            let payload = encode_payload(&refs).unwrap();
            let back = decode_payload(&payload).unwrap();
            proptest::prop_assert_eq!(back.len(), values.len());
            for ((k, v), (bk, bv)) in values.iter().zip(back.iter()) {
                proptest::prop_assert_eq!(k, bk);
                proptest::prop_assert_eq!(v.as_slice(), bv.expose_bytes());
            }
        }

        #[test]
        fn decoder_never_panics_on_garbage(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = decode_payload(&bytes);
            let _ = read_header(&bytes);
        }
    }
}
