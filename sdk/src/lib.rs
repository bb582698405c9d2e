//! # huiliu-sdk — write a Huiliu connector plugin
//!
//! A connector teaches the Huiliu gateway one e-commerce platform. It is a **sans-IO** state
//! machine: the gateway owns every socket, timer, retry and rate limit; the connector turns the
//! bytes the gateway read into normalized [`InboundEvent`]s and the gateway's intents
//! ([`OutgoingMessage`], [`TransferRequest`], token refresh) into fully signed
//! [`HttpRequest`]s, and classifies the platform's answers ([`SendOutcome`]). Time is an
//! argument (`now`, epoch milliseconds), never read from a clock, so a connector replays
//! exactly from recorded fixtures.
//!
//! To write one: implement [`Connector`], then call [`export_connector!`] once, and build the
//! crate as a `cdylib`. Run the conformance kit ([`testkit`], feature `testkit`) from your
//! tests. `docs/writing-a-connector.md` in the Huiliu repository walks through it, and
//! `sdk/examples/echo-connector` is a complete plugin to copy.
//!
//! Architecture invariant: this crate knows nothing of the gateway — no async runtime, no HTTP
//! client, no storage. It depends on serde, a MessagePack codec and digest crates only.

#![deny(missing_debug_implementations)]
// Every `unsafe` of the SDK lives under `abi/` (the C boundary), each with a `// SAFETY:` note;
// the rest of the crate, the conformance kit included, is safe code.
#![deny(unsafe_code)]

#[allow(unsafe_code)]
pub mod abi;
pub mod connector;
pub mod crypto;
pub mod id;
pub mod model;
pub mod time;
pub mod wire;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use connector::{Capability, ConfigKey, ConnectionNeed, Connector, Manifest};
pub use id::ExactId;
pub use model::{
    Buyer, BuyerMessage, ConnectorError, Content, DeadLetter, ErrorKind, EventKind, InboundEvent, Millis, OrderEvent,
    OrderStage, OutgoingMessage, PlatformError, RefundEvent, RefundStage, ReplyContext, SendOutcome, ShopConfig,
    TokenGrant, TransferRequest, VipHint, fallback_text,
};
pub use wire::{
    AckBatch, ChannelControl, ChannelData, ChannelOpen, ChannelOutcome, ChannelState, Frame, Headers, HttpPush,
    HttpRequest, HttpResponse, IgnoredUnit, Lookup, LookupOutcome, PushOutcome, RejectKind, SendPrep, UploadOutcome,
    header,
};
