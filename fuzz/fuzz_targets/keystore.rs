//! The keystore decoder (`keystore/src/format.rs`): header, KDF bounds, and the decrypted
//! payload's entry list.
//!
//! Key derivation and AES-GCM stop any blind mutation at the checksum or the tag, so the
//! harness writes files itself, following docs/keystore-format.md (Argon2id with the
//! cheapest allowed costs, HMAC-derived keys, AES-256-GCM with the header as AAD, SHA-256
//! trailer). On first use it checks that a file it writes opens with the real decoder, so
//! a format change cannot silently turn this target into a checksum test.
//!
//! Input: `[mode][…]`.
//! - mode 0: the bytes are a keystore file.
//! - mode 1: 108 header bytes then a body: the trailer is re-sealed so the header parser
//!   sees them; the file is only decrypted when its KDF costs are cheap.
//! - mode 2: the bytes are the plaintext payload, sealed with the right password.
//!
//! Properties: `Ok` or `Err`, never a panic or an allocation above the cap; a correctly
//! sealed payload is never reported as a wrong password.
#![no_main]

use std::sync::Once;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use argon2::{Algorithm, Argon2, Params, Version};
use coffer_fuzz::{CappedAlloc, Input};
use coffer_keystore::{Keystore, KeystoreError};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

const HEADER_LEN: usize = 108;
const PASSWORD: &str = "fuzz";
/// The cheapest costs the format allows: derivation then takes microseconds.
const CHEAP: (u32, u32, u32) = (8, 1, 1);

static SELF_CHECK: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    SELF_CHECK.call_once(|| {
        let file = seal(&[0, 0, 0, 0], [1; 32], [2; 12]);
        Keystore::from_bytes(&file, &password()).expect(
            "the harness no longer writes valid keystores: update it to docs/keystore-format.md",
        );
    });
    let mut input = Input::new(data);
    match input.byte() % 3 {
        0 => {
            let bytes = input.rest();
            let _ = Keystore::bytes_are_password_protected(bytes);
            if cheap(bytes) {
                let _ = Keystore::from_bytes(bytes, &password());
            }
        }
        1 => {
            let mut bytes = input.rest().to_vec();
            let digest = Sha256::digest(&bytes);
            bytes.extend_from_slice(&digest);
            let _ = Keystore::bytes_are_password_protected(&bytes);
            if cheap(&bytes) {
                let _ = Keystore::from_bytes(&bytes, &password());
            }
        }
        _ => {
            let salt = input.array::<32>();
            let nonce = input.array::<12>();
            let file = seal(input.rest(), salt, nonce);
            assert_eq!(
                Keystore::bytes_are_password_protected(&file).ok(),
                Some(true)
            );
            match Keystore::from_bytes(&file, &password()) {
                Ok(ks) => {
                    let names: Vec<&str> = ks.names().collect();
                    assert!(
                        names.windows(2).all(|w| w[0] < w[1]),
                        "names not strictly sorted"
                    );
                    for name in names {
                        assert!(coffer_keystore::validate_setting_name(name).is_ok());
                    }
                }
                Err(KeystoreError::WrongPassword) => panic!("right password reported wrong"),
                Err(_) => {}
            }
        }
    }
});

fn password() -> SecretString {
    SecretString::from(PASSWORD)
}

/// Whether decrypting would run a derivation no dearer than the cheapest.
fn cheap(bytes: &[u8]) -> bool {
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    matches!(
        (u32_at(12), u32_at(16), u32_at(20)),
        (Some(m), Some(t), Some(p)) if m <= 64 && t <= 2 && p <= 8
    )
}

fn prf(key: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(label);
    mac.finalize().into_bytes().into()
}

/// A keystore file holding `payload`, as docs/keystore-format.md specifies.
fn seal(payload: &[u8], salt: [u8; 32], nonce: [u8; 12]) -> Vec<u8> {
    let (m, t, p) = CHEAP;
    let params = Params::new(m, t, p, Some(32)).unwrap();
    let mut master = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(PASSWORD.as_bytes(), &salt, &mut master)
        .unwrap();
    let enc = prf(&master, b"coffer keystore v1 encryption key");
    let verifier = prf(&master, b"coffer keystore v1 password verifier");
    let mut file = Vec::with_capacity(HEADER_LEN + payload.len() + 48);
    file.extend_from_slice(b"COFFERKS");
    file.extend_from_slice(&1u16.to_be_bytes());
    file.push(1); // password-protected
    file.push(1); // Argon2id
    for v in [m, t, p] {
        file.extend_from_slice(&v.to_be_bytes());
    }
    file.extend_from_slice(&salt);
    file.extend_from_slice(&nonce);
    file.extend_from_slice(&verifier);
    file.extend_from_slice(&(payload.len() as u64 + 16).to_be_bytes());
    let ciphertext = Aes256Gcm::new((&enc).into())
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: payload,
                aad: &file,
            },
        )
        .unwrap();
    file.extend_from_slice(&ciphertext);
    let digest = Sha256::digest(&file);
    file.extend_from_slice(&digest);
    file
}
