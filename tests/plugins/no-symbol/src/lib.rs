//! A perfectly good shared library that is not a Huiliu plugin: it exports no entry symbol.

#[unsafe(no_mangle)]
pub extern "C" fn something_else() -> i32 {
    42
}
