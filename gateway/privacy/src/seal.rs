//! Sealed originals: when a message had personal data masked, its original text may be kept
//! encrypted (ChaCha20-Poly1305, a random nonce per message, key from `privacy.seal_key` /
//! `HUILIU__PRIVACY__SEAL_KEY`) so that a lead or admin can reveal it through an audited call.
//! Without a key nothing is kept and nothing can be revealed.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

/// Binds every sealed value to this use and format version.
const AAD: &[u8] = b"huiliu-seal-v1";

/// Seals and opens originals.
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(key hidden)")
    }
}

impl Sealer {
    /// A sealer from a 32-byte key written as 64 hex digits.
    pub fn from_hex(key_hex: &str) -> Result<Sealer, String> {
        let bytes = hex::decode(key_hex.trim()).map_err(|_| "must be 64 hex digits".to_owned())?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| "must be 64 hex digits (32 bytes)".to_owned())?;
        Ok(Sealer { cipher: ChaCha20Poly1305::new(&Key::from(key)) })
    }

    /// `nonce ‖ ciphertext ‖ tag`.
    pub fn seal(&self, plaintext: &str) -> Vec<u8> {
        let nonce_bytes: [u8; 12] = rand::random();
        let nonce = Nonce::from(nonce_bytes);
        // Encryption only fails for messages beyond ChaCha20's 256 GiB limit.
        let sealed = self.cipher.encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: AAD }).unwrap_or_default();
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    /// The original text, or why it cannot be opened (wrong key, tampered, truncated).
    pub fn open(&self, sealed: &[u8]) -> Result<String, String> {
        if sealed.len() < 12 + 16 {
            return Err("sealed value too short".into());
        }
        let (nonce, body) = sealed.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| "bad nonce".to_owned())?;
        let plain = self
            .cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: body, aad: AAD })
            .map_err(|_| "cannot open: wrong key or tampered value".to_owned())?;
        String::from_utf8(plain).map_err(|_| "sealed value is not text".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn round_trip_and_tamper_detection() {
        let s = Sealer::from_hex(KEY).unwrap();
        let sealed = s.seal("我手机号是13812345678");
        assert!(!sealed.windows(11).any(|w| w == b"13812345678"));
        assert_eq!(s.open(&sealed).unwrap(), "我手机号是13812345678");
        assert_ne!(s.seal("x"), s.seal("x"), "fresh nonce each time");
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert!(s.open(&bad).is_err());
        let other = Sealer::from_hex(&KEY.replace("00", "ff")).unwrap();
        assert!(other.open(&sealed).is_err());
        assert!(s.open(&sealed[..10]).is_err());
    }

    #[test]
    fn key_must_be_32_bytes_of_hex() {
        assert!(Sealer::from_hex("abc").is_err());
        assert!(Sealer::from_hex(&"zz".repeat(32)).is_err());
        assert!(Sealer::from_hex(&"ab".repeat(31)).is_err());
        assert!(format!("{:?}", Sealer::from_hex(KEY).unwrap()).contains("hidden"));
    }
}
