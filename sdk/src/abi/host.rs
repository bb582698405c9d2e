//! The host side of the ABI: typed, safe calls into a plugin's [`PluginTable`].
//!
//! The gateway's loader obtains the table from a dynamic library; the conformance kit obtains
//! it from the plugin's own `huiliu_connector_entry` in-process. Both call through here, so the
//! kit exercises exactly the path the daemon uses.

use std::ffi::c_void;
use std::ptr::NonNull;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ABI_VERSION, MAGIC, Op, OwnedBuf, PluginTable, StrRef, decode, encode, status};
use crate::connector::{Capability, ConnectionNeed, Manifest};
use crate::model::{
    ConnectorError, ErrorKind, Millis, OutgoingMessage, SendOutcome, ShopConfig, TokenGrant, TransferRequest,
};
use crate::wire::{ChannelData, ChannelOpen, ChannelOutcome, Frame, HttpPush, HttpRequest, HttpResponse, PushOutcome};

/// Why a table could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableError {
    /// The entry symbol returned null.
    Null,
    /// The table does not start with [`MAGIC`]: not a Huiliu plugin table.
    BadMagic,
    /// Built for another ABI version.
    AbiMismatch { found: u32, expected: u32 },
}

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TableError::Null => write!(f, "entry symbol returned a null table"),
            TableError::BadMagic => write!(f, "entry symbol returned something that is not a Huiliu plugin table"),
            TableError::AbiMismatch { found, expected } => write!(
                f,
                "built for plugin ABI version {found}, this gateway speaks version {expected}; rebuild the plugin against a matching huiliu-sdk"
            ),
        }
    }
}

impl std::error::Error for TableError {}

/// Why a call into a plugin failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The plugin panicked; the message is the panic's.
    Panicked(String),
    /// The connector returned an error.
    Connector(ConnectorError),
    /// Arguments or result could not be (de)serialized: an SDK mismatch or a plugin bug.
    Codec(String),
    /// The plugin returned a status this host does not know, or rejected the op.
    Status { code: i32, message: String },
}

impl CallError {
    /// Whether the plugin panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, CallError::Panicked(_))
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Panicked(m) => write!(f, "{m}"),
            CallError::Connector(e) => write!(f, "{e}"),
            CallError::Codec(m) => write!(f, "plugin data mismatch: {m}"),
            CallError::Status { code, message } => write!(f, "plugin returned status {code}: {message}"),
        }
    }
}

impl std::error::Error for CallError {}

/// A validated plugin table. `'static` because libraries are never unloaded.
#[derive(Debug, Clone, Copy)]
pub struct Plugin {
    table: &'static PluginTable,
}

// SAFETY: the table is immutable after the plugin built it (a `OnceLock` static) and lives for
// the rest of the process; its strings are never mutated, and its functions are safe to call
// from any thread (instances serialize themselves behind a Mutex).
unsafe impl Send for Plugin {}
// SAFETY: as above.
unsafe impl Sync for Plugin {}

/// Reads a plugin-owned static string, replacing invalid UTF-8.
fn read_str(s: StrRef) -> String {
    if s.ptr.is_null() || s.len == 0 {
        return String::new();
    }
    // SAFETY: the plugin's table points at strings it keeps for the life of the process
    // (see `export::Exported`); the library is never unloaded.
    let bytes = unsafe { std::slice::from_raw_parts(s.ptr, s.len) };
    String::from_utf8_lossy(bytes).into_owned()
}

impl Plugin {
    /// Validates the table returned by a plugin's entry symbol: magic first, then the ABI
    /// version, before any function in it is called.
    ///
    /// # Safety
    /// `table` must be null or point to memory readable for at least the size of a
    /// [`PluginTable`] that stays valid for the rest of the process (the library is never
    /// unloaded). If magic and version match, it must be a [`PluginTable`] of this ABI.
    pub unsafe fn from_table(table: *const PluginTable) -> Result<Plugin, TableError> {
        if table.is_null() {
            return Err(TableError::Null);
        }
        // SAFETY: readable per the contract; the magic and version are the first fields of
        // every ABI version's table, so reading them is valid whatever the version.
        let (magic, abi) = unsafe { ((*table).magic, (*table).abi_version) };
        if magic != MAGIC {
            return Err(TableError::BadMagic);
        }
        if abi != ABI_VERSION {
            return Err(TableError::AbiMismatch { found: abi, expected: ABI_VERSION });
        }
        // SAFETY: a table of this ABI version, valid for the rest of the process.
        Ok(Plugin { table: unsafe { &*table } })
    }

    /// Validates the table of a plugin linked into this process (the conformance kit's path):
    /// calls `entry` and then [`Plugin::from_table`].
    ///
    /// Crate-private: it trusts that `entry` is the `huiliu_connector_entry` that
    /// [`crate::export_connector!`] generated, which is what [`crate::testkit::Kit::entry`]
    /// documents. Kept here so every `unsafe` of the SDK stays under `abi/`.
    #[cfg(feature = "testkit")]
    pub(crate) fn from_linked_entry(entry: super::EntryFn) -> Result<Plugin, TableError> {
        // SAFETY: `entry` is a plugin's exported entry function linked into this process; the
        // table it returns lives for the whole process (a static inside the plugin).
        unsafe { Plugin::from_table(entry()) }
    }

    /// The ABI version the plugin was built for.
    pub fn abi_version(&self) -> u32 {
        self.table.abi_version
    }
    /// The SDK version the plugin was built with.
    pub fn sdk_version(&self) -> String {
        read_str(self.table.sdk_version)
    }
    /// The plugin id from the table.
    pub fn id(&self) -> String {
        read_str(self.table.plugin_id)
    }
    /// The platform from the table.
    pub fn platform(&self) -> String {
        read_str(self.table.platform)
    }
    /// The plugin version from the table.
    pub fn version(&self) -> String {
        read_str(self.table.plugin_version)
    }
    /// The capabilities from the table.
    pub fn capabilities(&self) -> Vec<Capability> {
        Capability::from_mask(self.table.capabilities)
    }
    /// The raw capability bits.
    pub fn capability_bits(&self) -> u64 {
        self.table.capabilities
    }

    /// Takes a result buffer from the plugin, decodes it and frees it through the plugin.
    fn take<T: DeserializeOwned>(&self, buf: OwnedBuf) -> Result<T, String> {
        if buf.ptr.is_null() {
            return Err("plugin returned no data".into());
        }
        // SAFETY: a non-null buffer returned by this plugin's functions is `len` initialized
        // bytes it allocated; we read it before handing it back to `free_buf` exactly once.
        let bytes = unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) };
        let value = decode::<T>(bytes);
        // SAFETY: `buf` came from this plugin and is freed exactly once, here.
        unsafe { (self.table.free_buf)(buf) };
        value
    }

    /// Turns a status and buffer into a result.
    fn finish<T: DeserializeOwned>(&self, code: i32, buf: OwnedBuf) -> Result<T, CallError> {
        match code {
            status::OK => self.take(buf).map_err(CallError::Codec),
            status::ERROR | status::PANIC | status::BAD_INPUT | status::UNKNOWN_OP => {
                let err: ConnectorError = self.take(buf).map_err(CallError::Codec)?;
                Err(match code {
                    status::PANIC => CallError::Panicked(err.message),
                    status::ERROR => CallError::Connector(err),
                    status::BAD_INPUT => CallError::Codec(err.message),
                    _ => CallError::Status { code, message: err.message },
                })
            }
            other => {
                if !buf.ptr.is_null() {
                    // SAFETY: `buf` came from this plugin and is freed exactly once, here.
                    unsafe { (self.table.free_buf)(buf) };
                }
                Err(CallError::Status { code: other, message: "unexpected status".into() })
            }
        }
    }

    /// Plugin-wide init: returns the manifest.
    pub fn init(&self) -> Result<Manifest, CallError> {
        let mut out = OwnedBuf::EMPTY;
        // SAFETY: `out` is a valid, writable slot for the duration of the call.
        let code = unsafe { (self.table.init)(&mut out) };
        self.finish(code, out)
    }

    /// Creates an instance for one shop.
    pub fn create(&self, config: &ShopConfig) -> Result<Instance, CallError> {
        let input = encode(config).map_err(CallError::Codec)?;
        let mut out = OwnedBuf::EMPTY;
        let mut handle: *mut c_void = std::ptr::null_mut();
        // SAFETY: `input` is valid for its length; `handle` and `out` are writable slots.
        let code = unsafe { (self.table.create)(input.as_ptr(), input.len(), &mut handle, &mut out) };
        if code == status::OK {
            if !out.ptr.is_null() {
                // SAFETY: `out` came from this plugin and is freed exactly once, here.
                unsafe { (self.table.free_buf)(out) };
            }
            return match NonNull::new(handle) {
                Some(handle) => Ok(Instance { plugin: *self, handle }),
                None => Err(CallError::Status { code, message: "create returned a null handle".into() }),
            };
        }
        Err(self
            .finish::<()>(code, out)
            .err()
            .unwrap_or(CallError::Status { code, message: "create failed without an error".into() }))
    }
}

/// One shop's connector instance inside a plugin.
#[derive(Debug)]
pub struct Instance {
    plugin: Plugin,
    handle: NonNull<c_void>,
}

// SAFETY: the export glue wraps every instance in a Mutex, so calls from any thread are
// serialized inside the plugin; the handle itself is just an address.
unsafe impl Send for Instance {}
// SAFETY: as above.
unsafe impl Sync for Instance {}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: the handle came from `create` of this table and is destroyed once, here.
        unsafe { (self.plugin.table.destroy)(self.handle.as_ptr()) };
    }
}

impl Instance {
    /// The plugin this instance belongs to.
    pub fn plugin(&self) -> Plugin {
        self.plugin
    }

    /// Calls `op` with serialized `args` and decodes the result.
    pub fn call<A: Serialize, R: DeserializeOwned>(&self, op: Op, args: &A) -> Result<R, CallError> {
        let input = encode(args).map_err(CallError::Codec)?;
        let mut out = OwnedBuf::EMPTY;
        // SAFETY: the handle is live (destroyed only on drop); `input` is valid for its
        // length; `out` is a writable slot.
        let code =
            unsafe { (self.plugin.table.call)(self.handle.as_ptr(), op as u32, input.as_ptr(), input.len(), &mut out) };
        self.plugin.finish(code, out)
    }

    pub fn connections(&self) -> Result<Vec<ConnectionNeed>, CallError> {
        self.call(Op::Connections, &())
    }
    pub fn decode_push(&self, push: &HttpPush, now: Millis) -> Result<PushOutcome, CallError> {
        self.call(Op::DecodePush, &(now, push))
    }
    pub fn channel_open(&self, channel: &str, now: Millis) -> Result<ChannelOpen, CallError> {
        self.call(Op::ChannelOpen, &(now, channel))
    }
    pub fn channel_data(&self, channel: &str, data: &ChannelData, now: Millis) -> Result<ChannelOutcome, CallError> {
        self.call(Op::ChannelData, &(now, channel, data))
    }
    pub fn channel_tick(&self, channel: &str, now: Millis) -> Result<Vec<Frame>, CallError> {
        self.call(Op::ChannelTick, &(now, channel))
    }
    pub fn channel_closed(&self, channel: &str, now: Millis) -> Result<(), CallError> {
        self.call(Op::ChannelClosed, &(now, channel))
    }
    pub fn encode_send(&self, message: &OutgoingMessage, now: Millis) -> Result<HttpRequest, CallError> {
        self.call(Op::EncodeSend, &(now, message))
    }
    pub fn classify_send(&self, response: &HttpResponse, now: Millis) -> Result<SendOutcome, CallError> {
        self.call(Op::ClassifySend, &(now, response))
    }
    pub fn encode_transfer(&self, transfer: &TransferRequest, now: Millis) -> Result<HttpRequest, CallError> {
        self.call(Op::EncodeTransfer, &(now, transfer))
    }
    pub fn classify_transfer(&self, response: &HttpResponse, now: Millis) -> Result<SendOutcome, CallError> {
        self.call(Op::ClassifyTransfer, &(now, response))
    }
    pub fn token_refresh(&self, now: Millis, force: bool) -> Result<Option<HttpRequest>, CallError> {
        self.call(Op::TokenRefresh, &(now, force))
    }
    pub fn token_refreshed(&self, response: &HttpResponse, now: Millis) -> Result<TokenGrant, CallError> {
        self.call(Op::TokenRefreshed, &(now, response))
    }
    pub fn prepare_send(&self, message: &OutgoingMessage, now: Millis) -> Result<crate::wire::SendPrep, CallError> {
        self.call(Op::PrepareSend, &(now, message))
    }
    pub fn encode_upload(
        &self,
        message: &OutgoingMessage,
        element: u32,
        media: &[u8],
        now: Millis,
    ) -> Result<HttpRequest, CallError> {
        self.call(Op::EncodeUpload, &(now, message, element, serde_bytes::Bytes::new(media)))
    }
    pub fn uploaded(
        &self,
        message: &OutgoingMessage,
        element: u32,
        response: &HttpResponse,
        now: Millis,
    ) -> Result<crate::wire::UploadOutcome, CallError> {
        self.call(Op::Uploaded, &(now, message, element, response))
    }
    pub fn complete_lookup(
        &self,
        context: &[u8],
        response: &HttpResponse,
        now: Millis,
    ) -> Result<crate::wire::LookupOutcome, CallError> {
        self.call(Op::CompleteLookup, &(now, serde_bytes::Bytes::new(context), response))
    }
}

impl From<ConnectorError> for CallError {
    fn from(e: ConnectorError) -> Self {
        if e.kind == ErrorKind::Panic { CallError::Panicked(e.message) } else { CallError::Connector(e) }
    }
}
