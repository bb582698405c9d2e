//! Services: what the flow and the API act through, each owning one concern over the store.
//!
//! - `blacklist`: reviewed, audited blacklist entries and the in-memory screen.
//! - `routing`: the live routing engine, its restore from the store and the record of each
//!   decision.

pub mod blacklist;
pub mod routing;
