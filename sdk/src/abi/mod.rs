//! The binary interface between the gateway and a plugin library.
//!
//! One exported C symbol, [`ENTRY_SYMBOL`], returns a pointer to a `#[repr(C)]`
//! [`PluginTable`]: magic, ABI version, SDK version, plugin id, platform, version, capability
//! bits and five function pointers. The host checks [`PluginTable::magic`] and
//! [`PluginTable::abi_version`] before any other call.
//!
//! Only byte buffers (pointer, length), integer status codes and opaque handles cross the
//! boundary. Arguments and results are SDK types serialized as MessagePack with field names
//! (self-describing; fields are added, never renamed). A buffer is freed by the side that
//! allocated it: the plugin's result buffers go back through [`PluginTable::free_buf`]. Every
//! export catches panics and reports them as [`status::PANIC`]. Libraries are never unloaded.
//!
//! Plugin authors never touch this module: they implement [`crate::Connector`] and call
//! [`crate::export_connector!`].

use std::ffi::c_void;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub mod export;
pub mod host;

/// The version of this binary interface. Bumped on any change to [`PluginTable`]'s layout or
/// to the meaning of an existing op; new ops and new serialized fields do not bump it.
pub const ABI_VERSION: u32 = 1;

/// `b"HUILIUv1"` as a little-endian integer: marks a table as ours before anything is read.
pub const MAGIC: u64 = u64::from_le_bytes(*b"HUILIUv1");

/// The name of the one exported symbol, NUL-terminated.
pub const ENTRY_SYMBOL: &[u8] = b"huiliu_connector_entry\0";

/// The SDK version a plugin was built with.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The signature of the entry symbol.
pub type EntryFn = extern "C" fn() -> *const PluginTable;

/// A borrowed, immutable UTF-8 string owned by the plugin for the life of the process.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StrRef {
    pub ptr: *const u8,
    pub len: usize,
}

/// A byte buffer allocated by the plugin; the host returns it through [`PluginTable::free_buf`].
#[repr(C)]
#[derive(Debug)]
pub struct OwnedBuf {
    pub ptr: *mut u8,
    pub len: usize,
    pub cap: usize,
}

impl OwnedBuf {
    /// The empty buffer (nothing to free).
    pub const EMPTY: OwnedBuf = OwnedBuf { ptr: std::ptr::null_mut(), len: 0, cap: 0 };
}

/// The table a plugin exports. Field order is part of the ABI.
///
/// # Safety (for callers of the function pointers)
/// Pointers passed in must be valid for the stated lengths for the duration of the call;
/// `out` and `handle` must point to writable slots; a handle must come from `create` of the
/// same table and not be destroyed; a buffer passed to `free_buf` must come from this plugin
/// and be freed once.
#[repr(C)]
#[derive(Debug)]
pub struct PluginTable {
    /// Always [`MAGIC`].
    pub magic: u64,
    /// The [`ABI_VERSION`] the plugin was built for. Checked before any call.
    pub abi_version: u32,
    pub sdk_version: StrRef,
    pub plugin_id: StrRef,
    pub platform: StrRef,
    pub plugin_version: StrRef,
    /// [`crate::Capability`] bits.
    pub capabilities: u64,
    /// Plugin-wide init. On [`status::OK`] `out` holds the serialized [`crate::Manifest`];
    /// otherwise a serialized [`crate::ConnectorError`].
    pub init: unsafe extern "C" fn(out: *mut OwnedBuf) -> i32,
    /// Creates a shop instance from a serialized [`crate::ShopConfig`]. On [`status::OK`]
    /// `handle` is set; otherwise `out` holds a serialized [`crate::ConnectorError`].
    pub create:
        unsafe extern "C" fn(config: *const u8, len: usize, handle: *mut *mut c_void, out: *mut OwnedBuf) -> i32,
    /// Runs [`Op`] `op` on an instance with serialized arguments; `out` holds the serialized
    /// result on [`status::OK`], else a serialized [`crate::ConnectorError`].
    pub call:
        unsafe extern "C" fn(handle: *mut c_void, op: u32, input: *const u8, len: usize, out: *mut OwnedBuf) -> i32,
    /// Destroys an instance. The handle is not used again.
    pub destroy: unsafe extern "C" fn(handle: *mut c_void),
    /// Frees a buffer the plugin returned.
    pub free_buf: unsafe extern "C" fn(buf: OwnedBuf),
}

/// Status codes returned by the table's functions.
pub mod status {
    /// Success; `out` holds the result.
    pub const OK: i32 = 0;
    /// The connector returned an error; `out` holds it.
    pub const ERROR: i32 = 1;
    /// The plugin panicked; `out` holds the panic message as an error.
    pub const PANIC: i32 = 2;
    /// The arguments could not be deserialized.
    pub const BAD_INPUT: i32 = 3;
    /// The op is not known to this plugin (built with an older SDK).
    pub const UNKNOWN_OP: i32 = 4;
    /// A null handle or output pointer was passed.
    pub const NULL_POINTER: i32 = 5;
}

/// The operations [`PluginTable::call`] dispatches. Arguments are tuples (serialized as arrays);
/// results are the named SDK types.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `()` → `Vec<ConnectionNeed>`
    Connections = 1,
    /// `(now, HttpPush)` → `PushOutcome`
    DecodePush = 2,
    /// `(now, channel)` → `ChannelOpen`
    ChannelOpen = 3,
    /// `(now, channel, ChannelData)` → `ChannelOutcome`
    ChannelData = 4,
    /// `(now, channel)` → `Vec<Frame>`
    ChannelTick = 5,
    /// `(now, channel)` → `()`
    ChannelClosed = 6,
    /// `(now, OutgoingMessage)` → `HttpRequest`
    EncodeSend = 7,
    /// `(now, HttpResponse)` → `SendOutcome`
    ClassifySend = 8,
    /// `(now, TransferRequest)` → `HttpRequest`
    EncodeTransfer = 9,
    /// `(now, HttpResponse)` → `SendOutcome`
    ClassifyTransfer = 10,
    /// `(now, force)` → `Option<HttpRequest>`
    TokenRefresh = 11,
    /// `(now, HttpResponse)` → `TokenGrant`
    TokenRefreshed = 12,
    /// `(now, context, HttpResponse)` → `LookupOutcome` (added in SDK 0.1 without an ABI bump:
    /// the host calls it only for a connector that returned lookups)
    CompleteLookup = 13,
    /// `(now, OutgoingMessage)` → `SendPrep` (called before every send; an older plugin answers
    /// "unknown op", which the host takes as `Ready`)
    PrepareSend = 14,
    /// `(now, OutgoingMessage, element, media)` → `HttpRequest`
    EncodeUpload = 15,
    /// `(now, OutgoingMessage, element, HttpResponse)` → `UploadOutcome`
    Uploaded = 16,
}

impl Op {
    /// The op for a raw code.
    pub fn from_code(code: u32) -> Option<Op> {
        use Op::*;
        Some(match code {
            1 => Connections,
            2 => DecodePush,
            3 => ChannelOpen,
            4 => ChannelData,
            5 => ChannelTick,
            6 => ChannelClosed,
            7 => EncodeSend,
            8 => ClassifySend,
            9 => EncodeTransfer,
            10 => ClassifyTransfer,
            11 => TokenRefresh,
            12 => TokenRefreshed,
            13 => CompleteLookup,
            14 => PrepareSend,
            15 => EncodeUpload,
            16 => Uploaded,
            _ => return None,
        })
    }

    /// The op's name for logs and metrics.
    pub fn name(self) -> &'static str {
        use Op::*;
        match self {
            Connections => "connections",
            DecodePush => "decode_push",
            ChannelOpen => "channel_open",
            ChannelData => "channel_data",
            ChannelTick => "channel_tick",
            ChannelClosed => "channel_closed",
            EncodeSend => "encode_send",
            ClassifySend => "classify_send",
            EncodeTransfer => "encode_transfer",
            ClassifyTransfer => "classify_transfer",
            TokenRefresh => "token_refresh",
            TokenRefreshed => "token_refreshed",
            CompleteLookup => "complete_lookup",
            PrepareSend => "prepare_send",
            EncodeUpload => "encode_upload",
            Uploaded => "uploaded",
        }
    }
}

/// Serializes a value the way both sides expect (MessagePack, structs as maps).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    rmp_serde::to_vec_named(value).map_err(|e| e.to_string())
}

/// Deserializes a value written by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
}
