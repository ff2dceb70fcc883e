//! The workload API's cryptography: SAS signing with a module's key, and sealing data for a
//! module (azure-iot-edge-contracts.md §1.2).
//!
//! **Sign.** `digest = HMAC-SHA256(module key, data)`, the signature of a SAS token (§2.3).
//!
//! **Encrypt / decrypt.** AES-256-GCM under a per-module key derived from the daemon's
//! [`MasterKey`]:
//!
//! ```text
//! K_m        = HKDF-SHA256(salt = "spoke-edge workload encryption v1", ikm = master key,
//!                          info = module id), 32 bytes
//! AAD        = module id || 0x00 || initialization vector
//! ciphertext = 0x01 || nonce (12 random bytes) || AES-256-GCM(K_m, nonce, AAD, plaintext) || tag (16)
//! ```
//!
//! The nonce is random rather than the caller's IV: edgeHub and edgeAgent seal every record of
//! their stores under one fixed IV (`IOTEDGE_BACKUP_IV`), and reusing a GCM nonce would expose
//! the plaintexts and the authentication key. The IV still binds the ciphertext, through the
//! AAD: decrypting with another IV, for another module or after any change fails. Callers treat
//! the ciphertext as opaque bytes, so the format is free to differ from Azure's. The leading
//! version byte lets the scheme change later.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::{hkdf, hmac};
use spoke_core::ids::ModuleId;

/// HKDF salt of the per-module encryption keys (scheme version 1).
const KDF_SALT: &[u8] = b"spoke-edge workload encryption v1";
/// First byte of every sealed value (scheme version 1).
const FORMAT_V1: u8 = 1;
/// Length of the GCM authentication tag.
const TAG_LEN: usize = 16;

/// Errors from sealing or opening data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The system's random number generator failed.
    #[error("the random number generator failed")]
    Random,
    /// The plaintext is too long for AES-GCM (more than 64 GiB).
    #[error("the plaintext is too long to encrypt")]
    TooLong,
    /// The ciphertext is malformed, was changed, or was sealed for another module or IV.
    #[error(
        "the ciphertext is invalid or was not sealed for this module and initialization vector"
    )]
    Open,
}

/// The daemon's secret from which each module's encryption key is derived. 32 bytes; its
/// `Debug` output never shows them.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A master key from stored bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh random master key, for the daemon to store on first start.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = [0; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| CryptoError::Random)?;
        Ok(Self(bytes))
    }

    /// The key bytes, for the daemon to store. Handle with care.
    pub fn expose_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The AES-256-GCM key of `module`.
    fn module_key(&self, module: &ModuleId) -> LessSafeKey {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, KDF_SALT).extract(&self.0);
        let info = [module.as_str().as_bytes()];
        // HKDF-SHA256 can expand up to 8160 bytes; the AES-256 key is 32.
        let okm = prk
            .expand(&info, &AES_256_GCM)
            .expect("HKDF output length fits");
        LessSafeKey::new(UnboundKey::from(okm))
    }
}

/// HMAC-SHA256 of `data` under `key`: the workload API's `sign` digest.
pub fn sign(key: &[u8], data: &[u8]) -> [u8; 32] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut digest = [0; 32];
    digest.copy_from_slice(tag.as_ref());
    digest
}

/// Seals `plaintext` for `module` under the caller's initialization vector `iv`.
pub fn encrypt(
    master: &MasterKey,
    module: &ModuleId,
    iv: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| CryptoError::Random)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.push(FORMAT_V1);
    out.extend_from_slice(&nonce);
    let mut sealed = plaintext.to_vec();
    master
        .module_key(module)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(module, iv)),
            &mut sealed,
        )
        .map_err(|_| CryptoError::TooLong)?;
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens a value that [`encrypt`] sealed for `module` under the same `iv`.
pub fn decrypt(
    master: &MasterKey,
    module: &ModuleId,
    iv: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let Some((&FORMAT_V1, rest)) = ciphertext.split_first() else {
        return Err(CryptoError::Open);
    };
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Open);
    }
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
    let mut in_out = sealed.to_vec();
    let plain_len = master
        .module_key(module)
        .open_in_place(nonce, Aad::from(aad(module, iv)), &mut in_out)
        .map_err(|_| CryptoError::Open)?
        .len();
    in_out.truncate(plain_len);
    Ok(in_out)
}

/// The associated data: the module id and the IV, separated by a byte no module id contains.
fn aad(module: &ModuleId, iv: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(module.as_str().len() + 1 + iv.len());
    aad.extend_from_slice(module.as_str().as_bytes());
    aad.push(0);
    aad.extend_from_slice(iv);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(name: &str) -> ModuleId {
        ModuleId::parse(name).unwrap()
    }

    #[test]
    fn sign_is_hmac_sha256() {
        // RFC 4231 test case 2.
        let digest = sign(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            digest[..4],
            [0x5b, 0xdc, 0xc1, 0x46],
            "HMAC-SHA256 prefix from RFC 4231"
        );
    }

    #[test]
    fn round_trips_and_binds_module_and_iv() {
        let master = MasterKey::from_bytes([7; 32]);
        let hub = module("$edgeHub");
        let sealed = encrypt(&master, &hub, b"iv-1", b"store record").unwrap();
        assert_eq!(sealed.len(), 1 + NONCE_LEN + 12 + TAG_LEN);
        assert_eq!(
            decrypt(&master, &hub, b"iv-1", &sealed).unwrap(),
            b"store record"
        );
        assert_eq!(
            decrypt(&master, &hub, b"iv-2", &sealed),
            Err(CryptoError::Open)
        );
        assert_eq!(
            decrypt(&master, &module("$edgeAgent"), b"iv-1", &sealed),
            Err(CryptoError::Open)
        );
        let other = MasterKey::from_bytes([8; 32]);
        assert_eq!(
            decrypt(&other, &hub, b"iv-1", &sealed),
            Err(CryptoError::Open)
        );
    }

    #[test]
    fn same_iv_gives_fresh_nonces() {
        let master = MasterKey::from_bytes([1; 32]);
        let m = module("filter");
        let a = encrypt(&master, &m, b"iv", b"x").unwrap();
        let b = encrypt(&master, &m, b"iv", b"x").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn tampering_and_truncation_are_rejected() {
        let master = MasterKey::from_bytes([2; 32]);
        let m = module("filter");
        let sealed = encrypt(&master, &m, b"", b"payload").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            assert_eq!(decrypt(&master, &m, b"", &bad), Err(CryptoError::Open));
        }
        for len in 0..sealed.len() {
            assert_eq!(
                decrypt(&master, &m, b"", &sealed[..len]),
                Err(CryptoError::Open)
            );
        }
    }

    #[test]
    fn master_key_debug_hides_bytes() {
        assert_eq!(
            format!("{:?}", MasterKey::from_bytes([9; 32])),
            "MasterKey(..)"
        );
    }
}
