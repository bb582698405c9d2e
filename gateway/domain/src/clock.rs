//! The one clock. Everything that needs the time of day reads it here (clippy's
//! `disallowed-methods` refuses `SystemTime::now` elsewhere), so a test or a replay can reason
//! about time, and connectors — which never read a clock — get theirs from this value.

use huiliu_sdk::Millis;

/// Milliseconds since the Unix epoch.
#[allow(clippy::disallowed_methods)] // the one permitted reading of the system clock
pub fn now_millis() -> Millis {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}
