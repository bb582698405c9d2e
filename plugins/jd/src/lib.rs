//! Connector placeholder.
