//! Digest helpers the platforms' signing schemes need, over the RustCrypto crates.

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

/// Hex case of a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Upper,
    Lower,
}

fn hex_case(bytes: &[u8], case: Case) -> String {
    match case {
        Case::Upper => hex::encode_upper(bytes),
        Case::Lower => hex::encode(bytes),
    }
}

/// MD5 of the concatenation of `parts`, as hex.
pub fn md5_hex(parts: &[&[u8]], case: Case) -> String {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    hex_case(&h.finalize(), case)
}

/// HMAC-MD5 of the concatenation of `parts` under `key`, as hex.
pub fn hmac_md5_hex(key: &[u8], parts: &[&[u8]], case: Case) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Md5> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    hex_case(&mac.finalize().into_bytes(), case)
}

/// HMAC-SHA256 of the concatenation of `parts` under `key`, as hex.
pub fn hmac_sha256_hex(key: &[u8], parts: &[&[u8]], case: Case) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    hex_case(&mac.finalize().into_bytes(), case)
}

/// Compares two signatures in constant time (ASCII case-insensitive for hex).
pub fn signature_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x.to_ascii_lowercase() ^ y.to_ascii_lowercase();
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(md5_hex(&[b"abc"], Case::Lower), "900150983cd24fb0d6963f7d28e17f72");
        // RFC 4231 test case 2.
        assert_eq!(
            hmac_sha256_hex(b"Jefe", &[b"what do ya want ", b"for nothing?"], Case::Lower),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // RFC 2202 test case 2.
        assert_eq!(
            hmac_md5_hex(b"Jefe", &[b"what do ya want for nothing?"], Case::Lower),
            "750c783e6ab0b503eaa86e310a5db738"
        );
    }

    #[test]
    fn signature_compare() {
        assert!(signature_eq("ABCdef", "abcDEF"));
        assert!(!signature_eq("abc", "abd"));
        assert!(!signature_eq("abc", "abcd"));
    }
}
