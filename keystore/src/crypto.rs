//! Key derivation and authenticated encryption. Everything secret lives in zeroizing buffers.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use argon2::{Algorithm, Argon2, Params, Version};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::KeystoreError;
use crate::format::KdfParams;

pub(crate) const SALT_LEN: usize = 32;
pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const KEY_LEN: usize = 32;
pub(crate) const TAG_LEN: usize = 16;

/// The two keys derived from one password: one encrypts, the other is stored as a password
/// verifier. Splitting them lets us tell "wrong password" from "tampered ciphertext", which
/// AES-GCM alone cannot: both only fail the tag check.
pub(crate) struct DerivedKeys {
    pub(crate) encryption: Zeroizing<[u8; KEY_LEN]>,
    pub(crate) verifier: [u8; KEY_LEN],
}

pub(crate) fn derive(
    password: &[u8],
    salt: &[u8; SALT_LEN],
    kdf: KdfParams,
) -> Result<DerivedKeys, KeystoreError> {
    let params = Params::new(kdf.m_cost_kib, kdf.t_cost, kdf.p_cost, Some(KEY_LEN))
        .map_err(|_| KeystoreError::corrupted("invalid key derivation parameters"))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut master = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into(password, salt, master.as_mut())
        .map_err(|_| KeystoreError::corrupted("key derivation rejected its inputs"))?;
    let encryption = Zeroizing::new(prf(&master, b"coffer keystore v1 encryption key"));
    let verifier = prf(&master, b"coffer keystore v1 password verifier");
    Ok(DerivedKeys {
        encryption,
        verifier,
    })
}

fn prf(key: &[u8; KEY_LEN], label: &[u8]) -> [u8; KEY_LEN] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

pub(crate) fn seal(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-GCM encryption of an in-memory buffer cannot fail")
}

pub(crate) fn open(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KeystoreError> {
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| KeystoreError::corrupted("authentication tag mismatch"))
}

/// Fills a buffer from the operating system's CSPRNG.
pub(crate) fn random<const N: usize>() -> Result<[u8; N], KeystoreError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| {
        KeystoreError::io(
            "reading the system random number generator",
            "getrandom",
            std::io::Error::other(e.to_string()),
        )
    })?;
    Ok(out)
}
