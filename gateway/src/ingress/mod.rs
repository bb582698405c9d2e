//! Ingress: everything platforms send us. HTTP pushes arrive at `/hooks/{platform}/{shop}`
//! ([`push`]); WebSocket, stream and poll channels are kept by [`channels`]. Both hand what the
//! connector decoded to the one inbound flow, [`crate::flow::Flow::inbound`], and answer the
//! platform with what it returns ([`crate::flow::Ack`]).

pub mod channels;
pub mod push;
