//! The plugin side of the ABI: the glue [`crate::export_connector!`] expands to.
//!
//! Every function here catches panics, so no unwind ever crosses into the host.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ABI_VERSION, MAGIC, Op, OwnedBuf, PluginTable, SDK_VERSION, StrRef, decode, encode, status};
use crate::connector::{Capability, Connector, Manifest};
use crate::model::{ConnectorError, ErrorKind, Millis, ShopConfig};

/// The exported table and the strings it points into, kept for the life of the process.
#[doc(hidden)]
#[derive(Debug)]
pub struct Exported {
    table: PluginTable,
    _strings: Box<[String; 4]>,
}

// SAFETY: the table holds pointers into `_strings`, which is never mutated after construction,
// and `extern "C"` function pointers; sharing them between threads is sound.
unsafe impl Sync for Exported {}
// SAFETY: as above; nothing in it is tied to a thread.
unsafe impl Send for Exported {}

impl Exported {
    /// The table, for the entry symbol to return.
    pub fn table(&self) -> *const PluginTable {
        &self.table
    }
}

fn str_ref(s: &str) -> StrRef {
    StrRef { ptr: s.as_ptr(), len: s.len() }
}

/// Builds the table for connector `C`. A panic in `C::manifest` is caught: the table is still
/// returned (with an empty id) and `init` reports the panic.
#[doc(hidden)]
pub fn build<C: Connector>() -> Exported {
    let (id, platform, version, caps) = match catch_unwind(C::manifest) {
        Ok(m) => (m.id, m.platform, m.version, Capability::mask(&m.capabilities)),
        Err(_) => (String::new(), String::new(), String::new(), 0),
    };
    let strings = Box::new([SDK_VERSION.to_owned(), id, platform, version]);
    let table = PluginTable {
        magic: MAGIC,
        abi_version: ABI_VERSION,
        sdk_version: str_ref(&strings[0]),
        plugin_id: str_ref(&strings[1]),
        platform: str_ref(&strings[2]),
        plugin_version: str_ref(&strings[3]),
        capabilities: caps,
        init: init::<C>,
        create: create::<C>,
        call: call::<C>,
        destroy: destroy::<C>,
        free_buf,
    };
    Exported { table, _strings: strings }
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Hands `bytes` to the host through `out`.
fn give(out: *mut OwnedBuf, bytes: Vec<u8>) {
    let mut bytes = std::mem::ManuallyDrop::new(bytes);
    let buf = OwnedBuf { ptr: bytes.as_mut_ptr(), len: bytes.len(), cap: bytes.capacity() };
    // SAFETY: callers check `out` is non-null; the host passes a pointer to its own OwnedBuf.
    unsafe { out.write(buf) };
}

fn give_value<T: Serialize>(out: *mut OwnedBuf, code: i32, value: &T) -> i32 {
    match encode(value) {
        Ok(bytes) => {
            give(out, bytes);
            code
        }
        Err(e) => give_error(out, status::ERROR, ErrorKind::Internal, format!("cannot encode result: {e}")),
    }
}

fn give_error(out: *mut OwnedBuf, code: i32, kind: ErrorKind, message: String) -> i32 {
    let err = ConnectorError::new(kind, message);
    // Encoding a two-field struct cannot fail; if it somehow did, the host sees an empty buffer.
    give(out, encode(&err).unwrap_or_default());
    code
}

/// Runs `f`, turning a panic into [`status::PANIC`] with its message.
fn guarded(out: *mut OwnedBuf, f: impl FnOnce() -> i32) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(code) => code,
        Err(payload) => {
            give_error(out, status::PANIC, ErrorKind::Panic, format!("plugin panicked: {}", panic_message(&*payload)))
        }
    }
}

/// # Safety
/// See [`PluginTable`]'s safety section.
#[doc(hidden)]
pub unsafe extern "C" fn init<C: Connector>(out: *mut OwnedBuf) -> i32 {
    if out.is_null() {
        return status::NULL_POINTER;
    }
    guarded(out, || {
        let manifest: Manifest = C::manifest();
        match C::init_plugin() {
            Ok(()) => give_value(out, status::OK, &manifest),
            Err(e) => give_value(out, status::ERROR, &e),
        }
    })
}

/// # Safety
/// See [`PluginTable`]'s safety section.
#[doc(hidden)]
pub unsafe extern "C" fn create<C: Connector>(
    config: *const u8,
    len: usize,
    handle: *mut *mut c_void,
    out: *mut OwnedBuf,
) -> i32 {
    if out.is_null() || handle.is_null() || (config.is_null() && len > 0) {
        return status::NULL_POINTER;
    }
    guarded(out, || {
        // SAFETY: the host passes a buffer it owns of `len` bytes, valid for this call.
        let bytes = unsafe { slice_or_empty(config, len) };
        let config: ShopConfig = match decode(bytes) {
            Ok(c) => c,
            Err(e) => return give_error(out, status::BAD_INPUT, ErrorKind::InvalidInput, e),
        };
        match C::new(config) {
            Ok(instance) => {
                let boxed: Box<Mutex<C>> = Box::new(Mutex::new(instance));
                // SAFETY: `handle` was checked non-null and points to the host's slot.
                unsafe { handle.write(Box::into_raw(boxed).cast()) };
                status::OK
            }
            Err(e) => give_value(out, status::ERROR, &e),
        }
    })
}

/// # Safety
/// `ptr` must be valid for `len` bytes (or `len` is 0).
unsafe fn slice_or_empty<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        &[]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

/// Decodes the arguments, runs `f`, encodes the result.
fn run<A: DeserializeOwned, R: Serialize>(input: &[u8], out: *mut OwnedBuf, f: impl FnOnce(A) -> R) -> i32 {
    match decode::<A>(input) {
        Ok(args) => give_value(out, status::OK, &f(args)),
        Err(e) => give_error(out, status::BAD_INPUT, ErrorKind::InvalidInput, format!("bad arguments: {e}")),
    }
}

/// Like [`run`] for fallible calls.
fn run_result<A: DeserializeOwned, R: Serialize>(
    input: &[u8],
    out: *mut OwnedBuf,
    f: impl FnOnce(A) -> Result<R, ConnectorError>,
) -> i32 {
    match decode::<A>(input) {
        Ok(args) => match f(args) {
            Ok(r) => give_value(out, status::OK, &r),
            Err(e) => give_value(out, status::ERROR, &e),
        },
        Err(e) => give_error(out, status::BAD_INPUT, ErrorKind::InvalidInput, format!("bad arguments: {e}")),
    }
}

/// # Safety
/// See [`PluginTable`]'s safety section.
#[doc(hidden)]
pub unsafe extern "C" fn call<C: Connector>(
    handle: *mut c_void,
    op: u32,
    input: *const u8,
    len: usize,
    out: *mut OwnedBuf,
) -> i32 {
    if out.is_null() || handle.is_null() || (input.is_null() && len > 0) {
        return status::NULL_POINTER;
    }
    guarded(out, || {
        // SAFETY: `handle` came from `create::<C>` (a leaked `Box<Mutex<C>>`) and is not
        // destroyed while the host holds it; the Mutex serializes concurrent calls.
        let cell: &Mutex<C> = unsafe { &*handle.cast::<Mutex<C>>() };
        // A panic in an earlier call poisons the lock; the instance stays usable.
        let mut guard = cell.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let c: &mut C = &mut guard;
        // SAFETY: the host passes a buffer it owns of `len` bytes, valid for this call.
        let input = unsafe { slice_or_empty(input, len) };
        let Some(op) = Op::from_code(op) else {
            return give_error(out, status::UNKNOWN_OP, ErrorKind::Unsupported, format!("unknown op {op}"));
        };
        match op {
            Op::Connections => run(input, out, |(): ()| c.connections()),
            Op::DecodePush => run(input, out, |(now, push): (Millis, _)| c.decode_push(&push, now)),
            Op::ChannelOpen => run_result(input, out, |(now, ch): (Millis, String)| c.channel_open(&ch, now)),
            Op::ChannelData => run(input, out, |(now, ch, data): (Millis, String, _)| c.channel_data(&ch, data, now)),
            Op::ChannelTick => run(input, out, |(now, ch): (Millis, String)| c.channel_tick(&ch, now)),
            Op::ChannelClosed => run(input, out, |(now, ch): (Millis, String)| c.channel_closed(&ch, now)),
            Op::EncodeSend => run_result(input, out, |(now, m): (Millis, _)| c.encode_send(&m, now)),
            Op::ClassifySend => run(input, out, |(now, r): (Millis, _)| c.classify_send(&r, now)),
            Op::EncodeTransfer => run_result(input, out, |(now, t): (Millis, _)| c.encode_transfer(&t, now)),
            Op::ClassifyTransfer => run(input, out, |(now, r): (Millis, _)| c.classify_transfer(&r, now)),
            Op::TokenRefresh => run(input, out, |(now, force): (Millis, bool)| c.token_refresh(now, force)),
            Op::TokenRefreshed => run_result(input, out, |(now, r): (Millis, _)| c.token_refreshed(&r, now)),
            Op::CompleteLookup => run_result(input, out, |(now, ctx, r): (Millis, serde_bytes::ByteBuf, _)| {
                c.complete_lookup(&ctx, &r, now)
            }),
            Op::PrepareSend => run(input, out, |(now, m): (Millis, _)| c.prepare_send(&m, now)),
            Op::EncodeUpload => {
                run_result(input, out, |(now, m, element, media): (Millis, _, u32, serde_bytes::ByteBuf)| {
                    c.encode_upload(&m, element, &media, now)
                })
            }
            Op::Uploaded => {
                run(input, out, |(now, m, element, r): (Millis, _, u32, _)| c.uploaded(&m, element, &r, now))
            }
        }
    })
}

/// # Safety
/// See [`PluginTable`]'s safety section.
#[doc(hidden)]
pub unsafe extern "C" fn destroy<C: Connector>(handle: *mut c_void) {
    if handle.is_null() {
        return;
    }
    // A panicking Drop must not unwind into the host; the instance is gone either way.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `handle` came from `create::<C>` and the host calls destroy once.
        drop(unsafe { Box::from_raw(handle.cast::<Mutex<C>>()) });
    }));
}

/// # Safety
/// See [`PluginTable`]'s safety section.
#[doc(hidden)]
pub unsafe extern "C" fn free_buf(buf: OwnedBuf) {
    if buf.ptr.is_null() {
        return;
    }
    // SAFETY: every non-null OwnedBuf the plugin hands out comes from `give`, i.e. a Vec<u8>
    // allocated by this library's allocator with exactly this ptr/len/cap.
    drop(unsafe { Vec::from_raw_parts(buf.ptr, buf.len, buf.cap) });
}

/// Exports a [`Connector`] implementation as a plugin library.
///
/// ```ignore
/// struct MyConnector { /* … */ }
/// impl huiliu_sdk::Connector for MyConnector { /* … */ }
/// huiliu_sdk::export_connector!(MyConnector);
/// ```
///
/// The crate must be built as a `cdylib` (add `rlib` too to run the conformance kit from its
/// tests). The macro defines the one exported symbol `huiliu_connector_entry`.
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        /// The plugin's entry point: returns the ABI table. Called by the Huiliu host.
        #[unsafe(no_mangle)]
        pub extern "C" fn huiliu_connector_entry() -> *const $crate::abi::PluginTable {
            static EXPORTED: ::std::sync::OnceLock<$crate::abi::export::Exported> = ::std::sync::OnceLock::new();
            EXPORTED.get_or_init($crate::abi::export::build::<$connector>).table()
        }
    };
}
