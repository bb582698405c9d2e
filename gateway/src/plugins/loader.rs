//! Opening plugin libraries. The gateway's only `unsafe` lives here.

use std::path::Path;

use huiliu_sdk::abi::host::Plugin;
use huiliu_sdk::abi::{ENTRY_SYMBOL, EntryFn};

/// Opens the library at `path` and returns its validated table. The library is leaked on
/// purpose: unloading Rust code (`dlclose`) is unsound, so plugins live until the process ends.
pub fn open(path: &Path) -> Result<Plugin, String> {
    check_object_format(path)?;
    // SAFETY: loading a library runs its initializers. Plugin libraries are code the operator
    // chose to install in the plugins directory, i.e. as trusted as the gateway binary itself;
    // this is the one place the gateway accepts that.
    let library = unsafe { libloading::Library::new(path) }.map_err(|e| format!("cannot load library: {e}"))?;
    let entry: EntryFn = {
        // SAFETY: the symbol, when present, is the plugin's entry function with the signature
        // `EntryFn` (that is the contract of the name). We copy the fn pointer out; it stays
        // valid because the library is never unloaded.
        let symbol = unsafe { library.get::<EntryFn>(ENTRY_SYMBOL) };
        match symbol {
            Ok(s) => *s,
            Err(_) => {
                return Err(format!(
                    "not a Huiliu plugin: no `{}` symbol (build it with huiliu_sdk::export_connector!)",
                    String::from_utf8_lossy(&ENTRY_SYMBOL[..ENTRY_SYMBOL.len() - 1])
                ));
            }
        }
    };
    std::mem::forget(library);
    // The entry function only returns a pointer to its static table (the export macro catches
    // panics around building it).
    let table = entry();
    // SAFETY: the table is a static of the never-unloaded library; `from_table` reads only the
    // magic and ABI version before deciding it is a table of our layout.
    unsafe { Plugin::from_table(table) }.map_err(|e| e.to_string())
}

/// Refuses files that are not shared objects before handing them to the dynamic loader, whose
/// own message for them is obscure.
fn check_object_format(path: &Path) -> Result<(), String> {
    use std::io::Read;
    let mut head = [0u8; 4];
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let n = file.read(&mut head).map_err(|e| format!("cannot read: {e}"))?;
    let ok = match std::env::consts::OS {
        "linux" | "android" | "freebsd" | "openbsd" | "netbsd" => n == 4 && head == *b"\x7fELF",
        "macos" | "ios" => n == 4 && matches!(head, [0xcf, 0xfa, 0xed, 0xfe] | [0xca, 0xfe, 0xba, 0xbe]),
        "windows" => n >= 2 && head[..2] == *b"MZ",
        _ => true,
    };
    if ok { Ok(()) } else { Err("not a shared library (wrong file format)".into()) }
}
