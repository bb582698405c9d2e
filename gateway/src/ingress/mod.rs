//! Ingress: everything platforms send us. HTTP pushes arrive at `/hooks/{platform}/{shop}`
//! ([`push`]); WebSocket, stream and poll channels are kept by [`channels`]. Both hand what the
//! connector decoded to [`crate::pipeline::Pipeline::intake`] and acknowledge the platform only
//! after it returns.

pub mod channels;
pub mod push;
