//! WeChat message-push cryptography (消息加解密), as published in the message-push guide
//! (<https://developers.weixin.qq.com/miniprogram/dev/framework/server-ability/message-push.html>,
//! the page the WeChat Shop push docs defer to).
//!
//! - `signature` = hex SHA-1 of the lexicographically sorted `[token, timestamp, nonce]`,
//!   concatenated (plain mode and the URL-verification GET);
//! - `msg_signature` = hex SHA-1 of the sorted `[token, timestamp, nonce, Encrypt]` (safe mode;
//!   the doc insists: verify this one, not `signature`);
//! - `AESKey` = Base64-decode(`EncodingAESKey` + "="), 32 bytes; IV = its first 16 bytes;
//! - `Encrypt` = Base64(AES-256-CBC(random(16) ‖ msg_len (4 bytes, big-endian) ‖ msg ‖ appid)),
//!   PKCS#7-padded **to a multiple of 32 bytes** (the key size, not the 16-byte block).
//!
//! The primitives are the RustCrypto crates (`sha1`, `aes`, `cbc`) and `base64`; this module
//! only arranges them the way WeChat does.

use aes::Aes256;
use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use sha1::{Digest, Sha1};

/// EncodingAESKeys are 43 arbitrary letters and digits, so the last one usually carries
/// non-zero trailing bits, which a strict Base64 decoder refuses; WeChat's own samples decode
/// leniently, and so does this.
const LENIENT: GeneralPurpose =
    GeneralPurpose::new(&alphabet::STANDARD, GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true));

/// WeChat pads to the key size.
const PAD_BLOCK: usize = 32;

/// The hex SHA-1 signature of the sorted, concatenated `parts`.
pub fn sorted_sha1(parts: &[&str]) -> String {
    let mut sorted: Vec<&str> = parts.to_vec();
    sorted.sort_unstable();
    let mut h = Sha1::new();
    for p in sorted {
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Why a ciphertext could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoError(pub String);

/// A shop's EncodingAESKey, decoded. Its `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct AesKey([u8; 32]);

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey(<redacted>)")
    }
}

impl AesKey {
    /// Decodes the 43-character EncodingAESKey.
    pub fn from_encoding_key(encoding_aes_key: &str) -> Result<AesKey, CryptoError> {
        let key = encoding_aes_key.trim();
        if key.len() != 43 {
            return Err(CryptoError(format!("EncodingAESKey must be 43 characters, got {}", key.len())));
        }
        let bytes =
            LENIENT.decode(format!("{key}=")).map_err(|e| CryptoError(format!("EncodingAESKey is not Base64: {e}")))?;
        let key: [u8; 32] =
            bytes.try_into().map_err(|_| CryptoError("EncodingAESKey does not decode to 32 bytes".into()))?;
        Ok(AesKey(key))
    }

    fn iv(&self) -> &[u8] {
        &self.0[..16]
    }

    /// Opens `Encrypt`: returns `(msg, appid)`.
    pub fn decrypt(&self, encrypt: &str) -> Result<(Vec<u8>, String), CryptoError> {
        let mut buf =
            STANDARD.decode(encrypt.trim()).map_err(|e| CryptoError(format!("Encrypt is not Base64: {e}")))?;
        if buf.is_empty() || !buf.len().is_multiple_of(16) {
            return Err(CryptoError(format!("ciphertext of {} bytes is not whole AES blocks", buf.len())));
        }
        let decryptor = cbc::Decryptor::<Aes256>::new_from_slices(&self.0, self.iv())
            .map_err(|_| CryptoError("bad key or IV length".into()))?;
        let plain = decryptor
            .decrypt_padded::<NoPadding>(&mut buf)
            .map_err(|_| CryptoError("AES-CBC decryption failed".into()))?;
        let pad = usize::from(*plain.last().unwrap_or(&0));
        if pad == 0
            || pad > PAD_BLOCK
            || pad > plain.len()
            || !plain[plain.len() - pad..].iter().all(|&b| usize::from(b) == pad)
        {
            return Err(CryptoError("bad PKCS#7 padding (wrong EncodingAESKey?)".into()));
        }
        let full = &plain[..plain.len() - pad];
        if full.len() < 20 {
            return Err(CryptoError("plaintext shorter than its 20-byte header".into()));
        }
        let len = u32::from_be_bytes([full[16], full[17], full[18], full[19]]) as usize;
        let rest = &full[20..];
        if len > rest.len() {
            return Err(CryptoError(format!("msg_len {len} exceeds the {} bytes present", rest.len())));
        }
        let (msg, appid) = rest.split_at(len);
        let appid = String::from_utf8(appid.to_vec()).map_err(|_| CryptoError("appid is not UTF-8".into()))?;
        Ok((msg.to_vec(), appid))
    }

    /// Seals `msg` for `appid` with the given 16 random bytes (the caller supplies them: a
    /// connector has no randomness of its own). Used for encrypted answers and by tests.
    pub fn encrypt(&self, random: &[u8; 16], msg: &[u8], appid: &str) -> String {
        let mut full = Vec::with_capacity(20 + msg.len() + appid.len() + PAD_BLOCK);
        full.extend_from_slice(random);
        full.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        full.extend_from_slice(msg);
        full.extend_from_slice(appid.as_bytes());
        let pad = PAD_BLOCK - full.len() % PAD_BLOCK;
        full.extend(std::iter::repeat_n(pad as u8, pad));
        let len = full.len();
        let encryptor = cbc::Encryptor::<Aes256>::new_from_slices(&self.0, self.iv()).expect("32-byte key, 16-byte IV");
        let sealed = encryptor.encrypt_padded::<NoPadding>(&mut full, len).expect("whole blocks");
        STANDARD.encode(sealed)
    }
}

#[cfg(test)]
mod tests {
    //! The published examples of the message-push guide
    //! (<https://developers.weixin.qq.com/miniprogram/dev/framework/server-ability/message-push.html>,
    //! sections 发起验证, 消息解密方式为明文模式, 消息解密方式为安全模式), reproduced byte for byte.
    use super::*;

    const TOKEN: &str = "AAAAA";
    const ENCODING_AES_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const APPID: &str = "wxba5fad812f8e6fb9";
    const ENCRYPT: &str = "+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04=";

    #[test]
    fn published_url_verification_signature() {
        // 发起验证: signature=f464b2…&echostr=4375120948345356249&timestamp=1714036504&nonce=1514711492
        assert_eq!(sorted_sha1(&[TOKEN, "1714036504", "1514711492"]), "f464b24fc39322e44b38aa78f5edd27bd1441696");
    }

    #[test]
    fn published_plain_mode_signature() {
        // 明文模式: signature=899cf8…&timestamp=1714037059&nonce=486452656
        assert_eq!(sorted_sha1(&[TOKEN, "1714037059", "486452656"]), "899cf89e464efb63f54ddac96b0a0a235f53aa78");
    }

    #[test]
    fn published_safe_mode_push() {
        // 安全模式: msg_signature over [token, timestamp, nonce, Encrypt] …
        assert_eq!(
            sorted_sha1(&[TOKEN, "1714112445", "415670741", ENCRYPT]),
            "046e02f8204d34f8ba5fa3b1db94908f3df2e9b3"
        );
        // … then TmpMsg of 224 bytes opens to FullStr of 205: random "a8eedb185eb2fecf",
        // msg_len 167, the debug_demo event and the appid.
        let key = AesKey::from_encoding_key(ENCODING_AES_KEY).unwrap();
        let (msg, appid) = key.decrypt(ENCRYPT).unwrap();
        assert_eq!(
            String::from_utf8(msg).unwrap(),
            r#"{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}"#
        );
        assert_eq!(appid, APPID);
    }

    #[test]
    fn published_safe_mode_answer() {
        // The encrypted answer: random "707722b803182950", msg {"demo_resp":"good luck"} (25
        // bytes), FullStr 63 bytes → 64 after padding to 32, then MsgSignature over
        // [token, TimeStamp 1713424427, Nonce 415670741, Encrypt].
        let key = AesKey::from_encoding_key(ENCODING_AES_KEY).unwrap();
        let encrypt = key.encrypt(b"707722b803182950", br#"{"demo_resp":"good luck"}"#, APPID);
        assert_eq!(encrypt, "ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ==");
        assert_eq!(
            sorted_sha1(&[TOKEN, "1713424427", "415670741", &encrypt]),
            "1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1"
        );
    }

    #[test]
    fn tampering_and_wrong_keys_never_panic() {
        let key = AesKey::from_encoding_key(ENCODING_AES_KEY).unwrap();
        let other = AesKey::from_encoding_key("BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB").unwrap();
        assert!(other.decrypt(ENCRYPT).is_err() || other.decrypt(ENCRYPT).unwrap().1 != APPID);
        assert!(key.decrypt("").is_err());
        assert!(key.decrypt("not base64!").is_err());
        assert!(key.decrypt(&STANDARD.encode([0u8; 15])).is_err());
        assert!(AesKey::from_encoding_key("short").is_err());
        // A console-made key: its last character has trailing bits a strict decoder refuses.
        assert!(AesKey::from_encoding_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").is_ok());
        assert!(format!("{key:?}").contains("redacted"));
    }
}
