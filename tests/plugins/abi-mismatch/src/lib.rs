//! A plugin that claims a future ABI version: the host must refuse it before calling anything.
#![allow(unsafe_code)]
use std::sync::OnceLock;

use huiliu_sdk::abi::PluginTable;
use huiliu_sdk::abi::export::{Exported, build};
use huiliu_sdk::*;

pub struct Future;
impl Connector for Future {
    fn manifest() -> Manifest {
        Manifest {
            id: "abi-mismatch".into(),
            platform: "fixture".into(),
            version: "0.1.0".into(),
            description: "fixture: built for ABI 999".into(),
            capabilities: vec![Capability::Push],
            config_keys: vec![],
        }
    }
    fn init_plugin() -> Result<(), ConnectorError> {
        panic!("the host called init on a plugin of another ABI version")
    }
    fn new(_: ShopConfig) -> Result<Self, ConnectorError> {
        Ok(Future)
    }
}

struct Patched(PluginTable);
// SAFETY: the table only holds pointers to process-lifetime statics and fn pointers.
unsafe impl Sync for Patched {}
// SAFETY: as above.
unsafe impl Send for Patched {}

/// The real table with its ABI version overwritten.
#[unsafe(no_mangle)]
pub extern "C" fn huiliu_connector_entry() -> *const PluginTable {
    static EXPORTED: OnceLock<Exported> = OnceLock::new();
    static PATCHED: OnceLock<Patched> = OnceLock::new();
    let real = EXPORTED.get_or_init(build::<Future>).table();
    let patched = PATCHED.get_or_init(|| {
        // SAFETY: `real` points to the static table built above; we copy it bit for bit.
        let mut t: PluginTable = unsafe { std::ptr::read(real) };
        t.abi_version = 999;
        Patched(t)
    });
    &patched.0
}
