//! The TMC binary frame codec (public protocol, PROTOCOLS.md §1.2, as the official TOP SDKs
//! read and write it).
//!
//! ```text
//! frame    := int8 protocol_version (=2) · int8 message_type · header* · int16 0 (end of headers)
//! header   := int16 type · body
//!   1 Custom: counted_string key · int8 value_format · value   2 StatusCode: int32
//!   3 StatusPhrase: counted_string   4 Flag: int32   5 Token: counted_string
//! value_format: 0 void · 1 counted_string · 2 byte · 3 int16 · 4 int32 · 5 int64 · 6 date (int64 ms)
//!               · 7 byte array (int32 len + bytes)
//! counted_string := int32 byte_length · UTF-8 bytes          (all integers little-endian)
//! ```
//!
//! Decoding is bounded: every length is checked against the bytes that are actually left
//! before anything is allocated, the frame size and header count are capped, and a header
//! type or value format outside the protocol is an error (its body length is unknowable, so
//! the rest of the frame cannot be read). Nothing here panics on any input.

use std::fmt;

/// The only protocol version TMC speaks.
pub const PROTOCOL_VERSION: u8 = 2;

/// Frames above this size are refused before decoding. TMC messages are small JSON
/// documents; 4 MiB leaves room for the largest trade payloads.
pub const MAX_FRAME_LEN: usize = 4 << 20;

/// More headers than any real frame carries (a data frame has about ten).
const MAX_HEADERS: usize = 1024;

mod header_type {
    pub const END_OF_HEADERS: i16 = 0;
    pub const CUSTOM: i16 = 1;
    pub const STATUS_CODE: i16 = 2;
    pub const STATUS_PHRASE: i16 = 3;
    pub const FLAG: i16 = 4;
    pub const TOKEN: i16 = 5;
}

mod value_format {
    pub const VOID: u8 = 0;
    pub const COUNTED_STRING: u8 = 1;
    pub const BYTE: u8 = 2;
    pub const INT16: u8 = 3;
    pub const INT32: u8 = 4;
    pub const INT64: u8 = 5;
    pub const DATE: u8 = 6;
    pub const BYTE_ARRAY: u8 = 7;
}

/// The four TMC message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Connect,
    ConnectAck,
    Send,
    SendAck,
}

impl MessageType {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => MessageType::Connect,
            1 => MessageType::ConnectAck,
            2 => MessageType::Send,
            3 => MessageType::SendAck,
            _ => return None,
        })
    }

    fn to_byte(self) -> u8 {
        match self {
            MessageType::Connect => 0,
            MessageType::ConnectAck => 1,
            MessageType::Send => 2,
            MessageType::SendAck => 3,
        }
    }

    /// The protocol's name, for logs and snapshots.
    pub fn name(self) -> &'static str {
        match self {
            MessageType::Connect => "CONNECT",
            MessageType::ConnectAck => "CONNECTACK",
            MessageType::Send => "SEND",
            MessageType::SendAck => "SENDACK",
        }
    }
}

/// The value of a Custom header, in the wire format it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Void,
    Str(String),
    /// Java's signed byte.
    Byte(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    /// Milliseconds since the epoch.
    Date(i64),
    Bytes(Vec<u8>),
}

impl Value {
    /// The value as an integer, whatever integer format carried it. A counted string of
    /// decimal digits is accepted too: other TMC SDKs have been seen to send ids as text.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Byte(v) => Some(i64::from(*v)),
            Value::Int16(v) => Some(i64::from(*v)),
            Value::Int32(v) => Some(i64::from(*v)),
            Value::Int64(v) => Some(*v),
            Value::Str(s) => s.trim().parse().ok(),
            Value::Void | Value::Date(_) | Value::Bytes(_) => None,
        }
    }

    /// The value as epoch milliseconds: a date, or any integer format.
    pub fn as_millis(&self) -> Option<i64> {
        match self {
            Value::Date(v) => Some(*v),
            other => other.as_i64(),
        }
    }

    /// The value as text, when it is a counted string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The wire format's name, for snapshots.
    pub fn format_name(&self) -> &'static str {
        match self {
            Value::Void => "void",
            Value::Str(_) => "string",
            Value::Byte(_) => "byte",
            Value::Int16(_) => "int16",
            Value::Int32(_) => "int32",
            Value::Int64(_) => "int64",
            Value::Date(_) => "date",
            Value::Bytes(_) => "bytes",
        }
    }
}

/// One decoded TMC frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmcFrame {
    pub message_type: MessageType,
    pub status_code: Option<i32>,
    pub status_phrase: Option<String>,
    pub flag: Option<i32>,
    pub token: Option<String>,
    /// Custom headers in wire order (duplicates kept; [`TmcFrame::custom`] reads the last).
    pub custom: Vec<(String, Value)>,
}

impl TmcFrame {
    /// A frame of `message_type` with no headers.
    pub fn new(message_type: MessageType) -> Self {
        TmcFrame { message_type, status_code: None, status_phrase: None, flag: None, token: None, custom: Vec::new() }
    }

    /// Sets the Token header (builder style).
    pub fn with_token(mut self, token: Option<&str>) -> Self {
        self.token = token.map(str::to_owned);
        self
    }

    /// Appends a Custom header (builder style).
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.custom.push((key.to_owned(), value));
        self
    }

    /// The Custom header `key`. When a key repeats the last one wins, as in the official SDKs,
    /// which read the headers into a map.
    pub fn custom(&self, key: &str) -> Option<&Value> {
        self.custom.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The encoded frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(64);
        w.push(PROTOCOL_VERSION);
        w.push(self.message_type.to_byte());
        if let Some(code) = self.status_code {
            put_i16(&mut w, header_type::STATUS_CODE);
            w.extend_from_slice(&code.to_le_bytes());
        }
        if let Some(phrase) = &self.status_phrase {
            put_i16(&mut w, header_type::STATUS_PHRASE);
            put_counted(&mut w, phrase.as_bytes());
        }
        if let Some(flag) = self.flag {
            put_i16(&mut w, header_type::FLAG);
            w.extend_from_slice(&flag.to_le_bytes());
        }
        if let Some(token) = &self.token {
            put_i16(&mut w, header_type::TOKEN);
            put_counted(&mut w, token.as_bytes());
        }
        for (key, value) in &self.custom {
            put_i16(&mut w, header_type::CUSTOM);
            put_counted(&mut w, key.as_bytes());
            put_value(&mut w, value);
        }
        put_i16(&mut w, header_type::END_OF_HEADERS);
        w
    }

    /// Decodes one frame. Bytes after the end-of-headers marker are ignored, as the official
    /// SDKs do.
    pub fn decode(bytes: &[u8]) -> Result<TmcFrame, FrameError> {
        if bytes.len() > MAX_FRAME_LEN {
            return Err(FrameError::TooLarge { len: bytes.len() });
        }
        let mut r = Reader { buf: bytes, pos: 0 };
        let version = r.u8()?;
        if version != PROTOCOL_VERSION {
            return Err(FrameError::Version { found: version });
        }
        let type_byte = r.u8()?;
        let message_type = MessageType::from_byte(type_byte).ok_or(FrameError::MessageType { found: type_byte })?;
        let mut frame = TmcFrame::new(message_type);
        let mut headers = 0usize;
        loop {
            let at = r.pos;
            let ty = r.i16()?;
            if ty == header_type::END_OF_HEADERS {
                return Ok(frame);
            }
            headers += 1;
            if headers > MAX_HEADERS {
                return Err(FrameError::TooManyHeaders);
            }
            match ty {
                header_type::CUSTOM => {
                    let key = r.counted_string()?;
                    let value = r.value()?;
                    frame.custom.push((key, value));
                }
                header_type::STATUS_CODE => frame.status_code = Some(r.i32()?),
                header_type::STATUS_PHRASE => frame.status_phrase = Some(r.counted_string()?),
                header_type::FLAG => frame.flag = Some(r.i32()?),
                header_type::TOKEN => frame.token = Some(r.counted_string()?),
                other => return Err(FrameError::HeaderType { at, found: other }),
            }
        }
    }
}

/// Why bytes are not a TMC frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The frame ends before a field it announced.
    Truncated {
        at: usize,
        wanted: usize,
    },
    Version {
        found: u8,
    },
    MessageType {
        found: u8,
    },
    /// A header type outside 0–5: its length is unknown, so nothing after it can be read.
    HeaderType {
        at: usize,
        found: i16,
    },
    ValueFormat {
        at: usize,
        found: u8,
    },
    NegativeLength {
        at: usize,
        len: i32,
    },
    TooManyHeaders,
    TooLarge {
        len: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Truncated { at, wanted } => {
                write!(f, "truncated TMC frame: {wanted} more byte(s) needed at offset {at}")
            }
            FrameError::Version { found } => {
                write!(f, "not a TMC frame: protocol version {found}, expected {PROTOCOL_VERSION}")
            }
            FrameError::MessageType { found } => write!(f, "unknown TMC message type {found}"),
            FrameError::HeaderType { at, found } => write!(f, "unknown TMC header type {found} at offset {at}"),
            FrameError::ValueFormat { at, found } => write!(f, "unknown TMC value format {found} at offset {at}"),
            FrameError::NegativeLength { at, len } => write!(f, "negative length {len} at offset {at}"),
            FrameError::TooManyHeaders => write!(f, "more than {MAX_HEADERS} headers in one TMC frame"),
            FrameError::TooLarge { len } => {
                write!(f, "TMC frame of {len} bytes exceeds the {MAX_FRAME_LEN}-byte limit")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// A bounds-checked little-endian cursor.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let truncated = FrameError::Truncated { at: self.pos, wanted: n };
        let end = self.pos.checked_add(n).ok_or(truncated.clone())?;
        let slice = self.buf.get(self.pos..end).ok_or(truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let at = self.pos;
        self.take(N)?.try_into().map_err(|_| FrameError::Truncated { at, wanted: N })
    }

    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(u8::from_le_bytes(self.array()?))
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

    /// An int32 length followed by that many bytes; the length is checked against what is
    /// left before the bytes are copied, so a hostile length allocates nothing.
    fn counted_bytes(&mut self) -> Result<&'a [u8], FrameError> {
        let at = self.pos;
        let len = self.i32()?;
        let len = usize::try_from(len).map_err(|_| FrameError::NegativeLength { at, len })?;
        self.take(len)
    }

    /// Invalid UTF-8 is replaced (U+FFFD) rather than refused, like the official SDKs' string
    /// decoding, so one bad byte in a message body still lets the message be read, confirmed
    /// and dead-lettered instead of being redelivered forever.
    fn counted_string(&mut self) -> Result<String, FrameError> {
        Ok(String::from_utf8_lossy(self.counted_bytes()?).into_owned())
    }

    fn value(&mut self) -> Result<Value, FrameError> {
        let at = self.pos;
        Ok(match self.u8()? {
            value_format::VOID => Value::Void,
            value_format::COUNTED_STRING => Value::Str(self.counted_string()?),
            value_format::BYTE => Value::Byte(i8::from_le_bytes(self.array()?)),
            value_format::INT16 => Value::Int16(self.i16()?),
            value_format::INT32 => Value::Int32(self.i32()?),
            value_format::INT64 => Value::Int64(self.i64()?),
            value_format::DATE => Value::Date(self.i64()?),
            value_format::BYTE_ARRAY => Value::Bytes(self.counted_bytes()?.to_vec()),
            found => return Err(FrameError::ValueFormat { at, found }),
        })
    }
}

fn put_i16(w: &mut Vec<u8>, v: i16) {
    w.extend_from_slice(&v.to_le_bytes());
}

/// Writes an int32 length and the bytes. Everything this connector encodes is a config value,
/// an id or a short message, far below `i32::MAX`; a longer input is cut at `i32::MAX` bytes so
/// the length always matches the bytes written.
fn put_counted(w: &mut Vec<u8>, bytes: &[u8]) {
    let body = bytes.get(..i32::MAX as usize).unwrap_or(bytes);
    let len = i32::try_from(body.len()).unwrap_or(i32::MAX);
    w.extend_from_slice(&len.to_le_bytes());
    w.extend_from_slice(body);
}

fn put_value(w: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Void => w.push(value_format::VOID),
        Value::Str(s) => {
            w.push(value_format::COUNTED_STRING);
            put_counted(w, s.as_bytes());
        }
        Value::Byte(v) => {
            w.push(value_format::BYTE);
            w.extend_from_slice(&v.to_le_bytes());
        }
        Value::Int16(v) => {
            w.push(value_format::INT16);
            w.extend_from_slice(&v.to_le_bytes());
        }
        Value::Int32(v) => {
            w.push(value_format::INT32);
            w.extend_from_slice(&v.to_le_bytes());
        }
        Value::Int64(v) => {
            w.push(value_format::INT64);
            w.extend_from_slice(&v.to_le_bytes());
        }
        Value::Date(v) => {
            w.push(value_format::DATE);
            w.extend_from_slice(&v.to_le_bytes());
        }
        Value::Bytes(b) => {
            w.push(value_format::BYTE_ARRAY);
            put_counted(w, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data frame written byte by byte from the protocol description, independent of the
    /// encoder: SEND, Token "tk", __kind int16 3, id int64 2^53+1, topic, userid int32 7,
    /// outtime date 1451620800000, a void and a byte-array header.
    fn hand_written_data_frame() -> Vec<u8> {
        let mut b = vec![2u8, 2];
        b.extend([5, 0, 2, 0, 0, 0, b't', b'k']);
        b.extend([1, 0, 6, 0, 0, 0]);
        b.extend(b"__kind");
        b.extend([3, 3, 0]);
        b.extend([1, 0, 2, 0, 0, 0, b'i', b'd', 5]);
        b.extend(9_007_199_254_740_993_i64.to_le_bytes());
        b.extend([1, 0, 5, 0, 0, 0]);
        b.extend(b"topic");
        b.extend([1, 3, 0, 0, 0, b'a', b'_', b'b']);
        b.extend([1, 0, 6, 0, 0, 0]);
        b.extend(b"userid");
        b.extend([4, 7, 0, 0, 0]);
        b.extend([1, 0, 7, 0, 0, 0]);
        b.extend(b"outtime");
        b.push(6);
        b.extend(1_451_620_800_000_i64.to_le_bytes());
        b.extend([1, 0, 1, 0, 0, 0, b'v', 0]);
        b.extend([1, 0, 1, 0, 0, 0, b'x', 7, 2, 0, 0, 0, 0xde, 0xad]);
        b.extend([0, 0]);
        b
    }

    #[test]
    fn decodes_a_hand_written_frame() {
        let bytes = hand_written_data_frame();
        let frame = TmcFrame::decode(&bytes).expect("valid frame");
        assert_eq!(frame.message_type, MessageType::Send);
        assert_eq!(frame.token.as_deref(), Some("tk"));
        assert_eq!(frame.custom("__kind"), Some(&Value::Int16(3)));
        // 2^53 + 1 is not representable as f64: proves ids stay exact.
        assert_eq!(frame.custom("id").and_then(Value::as_i64), Some(9_007_199_254_740_993));
        assert_eq!(frame.custom("topic").and_then(Value::as_str), Some("a_b"));
        assert_eq!(frame.custom("userid").and_then(Value::as_i64), Some(7));
        assert_eq!(frame.custom("outtime"), Some(&Value::Date(1_451_620_800_000)));
        assert_eq!(frame.custom("v"), Some(&Value::Void));
        assert_eq!(frame.custom("x"), Some(&Value::Bytes(vec![0xde, 0xad])));
    }

    #[test]
    fn encoder_reproduces_the_hand_written_frame() {
        let frame = TmcFrame::new(MessageType::Send)
            .with_token(Some("tk"))
            .with("__kind", Value::Int16(3))
            .with("id", Value::Int64(9_007_199_254_740_993))
            .with("topic", Value::Str("a_b".into()))
            .with("userid", Value::Int32(7))
            .with("outtime", Value::Date(1_451_620_800_000))
            .with("v", Value::Void)
            .with("x", Value::Bytes(vec![0xde, 0xad]));
        assert_eq!(frame.encode(), hand_written_data_frame());
    }

    #[test]
    fn every_value_format_round_trips() {
        let frame = TmcFrame {
            message_type: MessageType::ConnectAck,
            status_code: Some(401),
            status_phrase: Some("invalid sign".into()),
            flag: Some(-1),
            token: Some("令牌".into()),
            custom: vec![
                ("a".into(), Value::Void),
                ("b".into(), Value::Str(String::new())),
                ("c".into(), Value::Byte(-3)),
                ("d".into(), Value::Int16(i16::MIN)),
                ("e".into(), Value::Int32(i32::MAX)),
                ("f".into(), Value::Int64(i64::MIN)),
                ("g".into(), Value::Date(0)),
                ("h".into(), Value::Bytes(Vec::new())),
            ],
        };
        assert_eq!(TmcFrame::decode(&frame.encode()), Ok(frame));
    }

    #[test]
    fn any_integer_format_reads_as_an_integer() {
        for (v, want) in [
            (Value::Byte(2), Some(2)),
            (Value::Int16(2), Some(2)),
            (Value::Int32(2), Some(2)),
            (Value::Int64(2), Some(2)),
            (Value::Str("18014398509481985".into()), Some(18_014_398_509_481_985)),
            (Value::Str("x".into()), None),
            (Value::Void, None),
            (Value::Bytes(vec![2]), None),
        ] {
            assert_eq!(v.as_i64(), want, "{v:?}");
        }
        assert_eq!(Value::Date(5).as_millis(), Some(5));
        assert_eq!(Value::Int64(5).as_millis(), Some(5));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = hand_written_data_frame();
        for cut in 0..bytes.len() {
            let prefix = bytes.get(..cut).unwrap_or_default();
            assert!(TmcFrame::decode(prefix).is_err(), "prefix of {cut} bytes decoded");
        }
    }

    #[test]
    fn refuses_what_is_not_tmc() {
        assert_eq!(TmcFrame::decode(&[1, 2, 0, 0]), Err(FrameError::Version { found: 1 }));
        assert_eq!(TmcFrame::decode(&[2, 9, 0, 0]), Err(FrameError::MessageType { found: 9 }));
        assert_eq!(TmcFrame::decode(&[2, 2, 9, 0, 0, 0]), Err(FrameError::HeaderType { at: 2, found: 9 }));
        // Custom "k" with value format 8.
        assert_eq!(
            TmcFrame::decode(&[2, 2, 1, 0, 1, 0, 0, 0, b'k', 8, 0, 0]),
            Err(FrameError::ValueFormat { at: 9, found: 8 })
        );
        // A Token whose length is -1.
        assert_eq!(
            TmcFrame::decode(&[2, 1, 5, 0, 0xff, 0xff, 0xff, 0xff]),
            Err(FrameError::NegativeLength { at: 4, len: -1 })
        );
    }

    #[test]
    fn hostile_lengths_allocate_nothing() {
        // A Token claiming i32::MAX bytes, with 3 present.
        let bytes = [2, 1, 5, 0, 0xff, 0xff, 0xff, 0x7f, b'a', b'b', b'c'];
        assert_eq!(TmcFrame::decode(&bytes), Err(FrameError::Truncated { at: 8, wanted: i32::MAX as usize }));
    }

    #[test]
    fn caps_size_and_header_count() {
        let big = vec![0u8; MAX_FRAME_LEN + 1];
        assert_eq!(TmcFrame::decode(&big), Err(FrameError::TooLarge { len: MAX_FRAME_LEN + 1 }));
        let mut many = vec![2u8, 2];
        for _ in 0..=MAX_HEADERS {
            many.extend([4, 0, 0, 0, 0, 0]); // Flag 0
        }
        many.extend([0, 0]);
        assert_eq!(TmcFrame::decode(&many), Err(FrameError::TooManyHeaders));
    }

    #[test]
    fn last_duplicate_custom_header_wins_and_trailing_bytes_are_ignored() {
        let mut bytes = TmcFrame::new(MessageType::Send)
            .with("topic", Value::Str("first".into()))
            .with("topic", Value::Str("second".into()))
            .encode();
        bytes.extend([0xaa, 0xbb]);
        let frame = TmcFrame::decode(&bytes).expect("valid");
        assert_eq!(frame.custom("topic").and_then(Value::as_str), Some("second"));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        let bytes = [2, 1, 5, 0, 2, 0, 0, 0, 0xff, b'a', 0, 0];
        assert_eq!(TmcFrame::decode(&bytes).expect("valid").token.as_deref(), Some("\u{fffd}a"));
    }
}
