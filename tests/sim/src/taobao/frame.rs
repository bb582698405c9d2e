//! The TMC binary frame codec (PROTOCOLS.md §1.2), little-endian throughout:
//!
//! ```text
//! frame    := int8 protocol_version (=2) · int8 message_type · header* · int16 0
//! header   := int16 type · body
//!   1 Custom      : counted_string key · int8 value_format · value
//!   2 StatusCode  : int32
//!   3 StatusPhrase: counted_string
//!   4 Flag        : int32
//!   5 Token       : counted_string
//! value_format: 0 void · 1 counted_string · 2 byte · 3 int16 · 4 int32 · 5 int64 · 6 date (int64 ms)
//!               · 7 byte array (int32 len + bytes)
//! counted_string := int32 byte_length · UTF-8 bytes
//! ```

use std::fmt;

pub const PROTOCOL_VERSION: u8 = 2;

pub const CONNECT: u8 = 0;
pub const CONNECTACK: u8 = 1;
pub const SEND: u8 = 2;
pub const SENDACK: u8 = 3;

/// `__kind` values.
pub const KIND_PULL: i64 = 1;
pub const KIND_CONFIRM: i64 = 2;
pub const KIND_DATA: i64 = 3;
pub const KIND_FAILED: i64 = 20;

/// A Custom header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Void,
    Str(String),
    Byte(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    /// Milliseconds since the epoch.
    Date(i64),
    Bytes(Vec<u8>),
}

impl Value {
    /// Any integer format (and a decimal string) as an exact integer.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Byte(v) => Some(i64::from(*v)),
            Value::I16(v) => Some(i64::from(*v)),
            Value::I32(v) => Some(i64::from(*v)),
            Value::I64(v) | Value::Date(v) => Some(*v),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Header {
    Custom(String, Value),
    StatusCode(i32),
    StatusPhrase(String),
    Flag(i32),
    Token(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub message_type: u8,
    pub headers: Vec<Header>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    Truncated,
    BadVersion(u8),
    BadMessageType(u8),
    BadHeaderType(i16),
    BadValueFormat(u8),
    BadLength(i32),
    BadUtf8,
    TrailingBytes(usize),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Truncated => write!(f, "truncated frame"),
            FrameError::BadVersion(v) => write!(f, "protocol version {v}, expected {PROTOCOL_VERSION}"),
            FrameError::BadMessageType(t) => write!(f, "unknown message type {t}"),
            FrameError::BadHeaderType(t) => write!(f, "unknown header type {t}"),
            FrameError::BadValueFormat(v) => write!(f, "unknown value format {v}"),
            FrameError::BadLength(n) => write!(f, "invalid length {n}"),
            FrameError::BadUtf8 => write!(f, "string is not UTF-8"),
            FrameError::TrailingBytes(n) => write!(f, "{n} bytes after the end of headers"),
        }
    }
}

impl std::error::Error for FrameError {}

impl Frame {
    pub fn new(message_type: u8) -> Frame {
        Frame { message_type, headers: Vec::new() }
    }

    pub fn custom(mut self, key: &str, value: Value) -> Frame {
        self.headers.push(Header::Custom(key.to_owned(), value));
        self
    }

    pub fn header(mut self, header: Header) -> Frame {
        self.headers.push(header);
        self
    }

    /// The first Custom header named `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.headers.iter().find_map(|h| match h {
            Header::Custom(k, v) if k == key => Some(v),
            _ => None,
        })
    }

    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_i64)
    }

    pub fn kind(&self) -> Option<i64> {
        self.get_i64("__kind")
    }

    pub fn token(&self) -> Option<&str> {
        self.headers.iter().find_map(|h| match h {
            Header::Token(t) => Some(t.as_str()),
            _ => None,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![PROTOCOL_VERSION, self.message_type];
        for h in &self.headers {
            match h {
                Header::Custom(key, value) => {
                    out.extend_from_slice(&1i16.to_le_bytes());
                    put_string(&mut out, key);
                    put_value(&mut out, value);
                }
                Header::StatusCode(c) => {
                    out.extend_from_slice(&2i16.to_le_bytes());
                    out.extend_from_slice(&c.to_le_bytes());
                }
                Header::StatusPhrase(p) => {
                    out.extend_from_slice(&3i16.to_le_bytes());
                    put_string(&mut out, p);
                }
                Header::Flag(f) => {
                    out.extend_from_slice(&4i16.to_le_bytes());
                    out.extend_from_slice(&f.to_le_bytes());
                }
                Header::Token(t) => {
                    out.extend_from_slice(&5i16.to_le_bytes());
                    put_string(&mut out, t);
                }
            }
        }
        out.extend_from_slice(&0i16.to_le_bytes());
        out
    }

    /// Decodes exactly one frame; anything malformed (truncation, negative or oversized lengths,
    /// unknown types, bytes after the end marker) is an error.
    pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
        let mut r = Reader { buf: bytes, pos: 0 };
        let version = r.u8()?;
        if version != PROTOCOL_VERSION {
            return Err(FrameError::BadVersion(version));
        }
        let message_type = r.u8()?;
        if message_type > SENDACK {
            return Err(FrameError::BadMessageType(message_type));
        }
        let mut headers = Vec::new();
        loop {
            let header_type = r.i16()?;
            let header = match header_type {
                0 => break,
                1 => {
                    let key = r.string()?;
                    let format = r.u8()?;
                    let value = match format {
                        0 => Value::Void,
                        1 => Value::Str(r.string()?),
                        2 => Value::Byte(r.u8()? as i8),
                        3 => Value::I16(r.i16()?),
                        4 => Value::I32(r.i32()?),
                        5 => Value::I64(r.i64()?),
                        6 => Value::Date(r.i64()?),
                        7 => {
                            let n = r.len()?;
                            Value::Bytes(r.take(n)?.to_vec())
                        }
                        other => return Err(FrameError::BadValueFormat(other)),
                    };
                    Header::Custom(key, value)
                }
                2 => Header::StatusCode(r.i32()?),
                3 => Header::StatusPhrase(r.string()?),
                4 => Header::Flag(r.i32()?),
                5 => Header::Token(r.string()?),
                other => return Err(FrameError::BadHeaderType(other)),
            };
            headers.push(header);
        }
        if r.pos != bytes.len() {
            return Err(FrameError::TrailingBytes(bytes.len() - r.pos));
        }
        Ok(Frame { message_type, headers })
    }
}

/// Accessors only the tests' hand-written client needs.
#[cfg(test)]
impl Frame {
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    pub fn status_code(&self) -> Option<i32> {
        self.headers.iter().find_map(|h| match h {
            Header::StatusCode(c) => Some(*c),
            _ => None,
        })
    }

    pub fn status_phrase(&self) -> Option<&str> {
        self.headers.iter().find_map(|h| match h {
            Header::StatusPhrase(p) => Some(p.as_str()),
            _ => None,
        })
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Void => out.push(0),
        Value::Str(s) => {
            out.push(1);
            put_string(out, s);
        }
        Value::Byte(b) => {
            out.push(2);
            out.push(*b as u8);
        }
        Value::I16(v) => {
            out.push(3);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::I32(v) => {
            out.push(4);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::I64(v) => {
            out.push(5);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Date(v) => {
            out.push(6);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Bytes(b) => {
            out.push(7);
            out.extend_from_slice(&(b.len() as i32).to_le_bytes());
            out.extend_from_slice(b);
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let end = self.pos.checked_add(n).ok_or(FrameError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(FrameError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.array::<1>()?[0])
    }
    fn i16(&mut self) -> Result<i16, FrameError> {
        Ok(i16::from_le_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32, FrameError> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, FrameError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    /// An int32 length that must be non-negative and fit in what is left.
    fn len(&mut self) -> Result<usize, FrameError> {
        let n = self.i32()?;
        if n < 0 || n as usize > self.buf.len() - self.pos {
            return Err(FrameError::BadLength(n));
        }
        Ok(n as usize)
    }
    fn string(&mut self) -> Result<String, FrameError> {
        let n = self.len()?;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| FrameError::BadUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_hand_written_frame() {
        // SEND · Token "tk" · Custom __kind int16 2 · Custom id int64 2^53+1 · end.
        let mut b = vec![2u8, 2];
        b.extend_from_slice(&[5, 0, 2, 0, 0, 0, b't', b'k']);
        b.extend_from_slice(&[1, 0, 6, 0, 0, 0]);
        b.extend_from_slice(b"__kind");
        b.extend_from_slice(&[3, 2, 0]);
        b.extend_from_slice(&[1, 0, 2, 0, 0, 0, b'i', b'd', 5]);
        b.extend_from_slice(&[0x01, 0, 0, 0, 0, 0, 0x20, 0]);
        b.extend_from_slice(&[0, 0]);
        let f = Frame::decode(&b).unwrap();
        assert_eq!(f.message_type, SEND);
        assert_eq!(f.token(), Some("tk"));
        assert_eq!(f.kind(), Some(KIND_CONFIRM));
        assert_eq!(f.get_i64("id"), Some(9_007_199_254_740_993));
        assert_eq!(f.get("id"), Some(&Value::I64((1 << 53) + 1)));
        assert_eq!(f.encode(), b);
    }

    fn every_kind_of_header() -> Frame {
        Frame::new(CONNECTACK)
            .header(Header::StatusCode(401))
            .header(Header::StatusPhrase("invalid sign".into()))
            .header(Header::Flag(-7))
            .header(Header::Token("令牌".into()))
            .custom("void", Value::Void)
            .custom("s", Value::Str("中文 \"json\"".into()))
            .custom("b", Value::Byte(-3))
            .custom("i16", Value::I16(-2))
            .custom("i32", Value::I32(i32::MIN))
            .custom("i64", Value::I64(i64::MAX))
            .custom("date", Value::Date(1_451_620_800_000))
            .custom("bytes", Value::Bytes(vec![0, 255, 1]))
            .custom("empty", Value::Str(String::new()))
    }

    #[test]
    fn round_trips_every_header_and_value_format() {
        let f = every_kind_of_header();
        let bytes = f.encode();
        assert_eq!(Frame::decode(&bytes).unwrap(), f);
        assert_eq!(f.status_code(), Some(401));
        assert_eq!(f.status_phrase(), Some("invalid sign"));
        assert_eq!(f.get_i64("b"), Some(-3));
        assert_eq!(f.get_i64("i32"), Some(i64::from(i32::MIN)));
        assert_eq!(f.get_i64("date"), Some(1_451_620_800_000));
        assert_eq!(Frame::decode(&Frame::new(CONNECT).encode()).unwrap().headers, vec![]);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = every_kind_of_header().encode();
        for n in 0..bytes.len() {
            assert!(Frame::decode(&bytes[..n]).is_err(), "prefix of {n} bytes decoded");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(Frame::decode(&long), Err(FrameError::TrailingBytes(1)));
    }

    #[test]
    fn hostile_input_is_refused() {
        // Token with a huge and a negative length.
        for len in [i32::MAX, -1, 3] {
            let mut b = vec![2u8, 0, 5, 0];
            b.extend_from_slice(&len.to_le_bytes());
            b.extend_from_slice(b"ab");
            assert_eq!(Frame::decode(&b), Err(FrameError::BadLength(len)));
        }
        assert_eq!(Frame::decode(&[1, 0, 0, 0]), Err(FrameError::BadVersion(1)));
        assert_eq!(Frame::decode(&[2, 9, 0, 0]), Err(FrameError::BadMessageType(9)));
        assert_eq!(Frame::decode(&[2, 0, 6, 0]), Err(FrameError::BadHeaderType(6)));
        assert_eq!(Frame::decode(&[2, 0, 1, 0, 1, 0, 0, 0, b'k', 8]), Err(FrameError::BadValueFormat(8)));
        assert_eq!(Frame::decode(&[2, 0, 3, 0, 2, 0, 0, 0, 0xff, 0xfe, 0, 0]), Err(FrameError::BadUtf8));
        assert_eq!(Frame::decode(b"{\"json\":1}").unwrap_err(), FrameError::BadVersion(b'{'));
    }
}
