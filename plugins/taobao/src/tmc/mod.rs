//! The TMC session (public protocol, PROTOCOLS.md §1.2): connect, pull, turn data messages into
//! acknowledged event batches, confirm.
//!
//! 1. `channel_open` sends CONNECT (Custom `app_key`, `group_name`, `timestamp`, `sign`, `sdk`,
//!    `intranet_ip`).
//! 2. CONNECTACK status 0 with a Token: the session is up; the Token goes on every later frame
//!    and a pull request (SEND, `__kind` = 1) is sent at once; the outcome reports
//!    [`ChannelState::Connected`]. A refusal closes the channel: `Fatal` only when it names the
//!    credentials (a phrase about the sign or signature, the app key or the secret) or is a bare
//!    401 with no phrase; any other refusal, whatever its status (`invalid timestamp`, `server
//!    busy`, …), is `Reconnect` with backoff. The host retries even a `Fatal` one slowly, so
//!    fixed credentials recover without a restart.
//! 3. Each data message (SEND, `__kind` = 3) becomes its own [`AckBatch`]: on durable storage
//!    it is confirmed (SEND, `__kind` = 2, `id`); if storage fails the host sends SENDACK
//!    `__kind` = 20 (Failed) so TMC redelivers at once.
//! 4. Pulls repeat on every `channel_tick` (every 5 s) while the session is up.
//!
//! TMC frames carry no per-message signature: the server authenticated this session by the
//! CONNECT signature, so a frame is trusted once it decodes. Bytes that are not a TMC frame are
//! reported in `rejected` as malformed. A message of a topic the gateway has no event for
//! (the app may be subscribed to more than the gateway uses) is confirmed with no events, so
//! TMC stops redelivering it. A data message with no readable `id` cannot be confirmed; it is
//! kept as a dead letter and TMC will redeliver it until it expires.

pub mod codec;

use huiliu_sdk::{
    AckBatch, ChannelControl, ChannelData, ChannelOutcome, ChannelState, DeadLetter, Frame, Millis, RejectKind,
};

use self::codec::{FrameError, MessageType, TmcFrame, Value};
use crate::inbound::{self, Context, Message, Topic};
use crate::settings::Settings;
use crate::sign::tmc_connect_sign;

/// The one channel this connector keeps.
pub(crate) const CHANNEL: &str = "tmc";
/// How often the host ticks the channel: TMC clients pull about every 5 s.
pub(crate) const TICK_INTERVAL_MS: u64 = 5_000;
/// The least wait before reconnecting after TMC refused or broke a session.
const RECONNECT_DELAY_MS: u64 = 5_000;
/// Sent as the CONNECT `sdk` header.
const SDK_NAME: &str = concat!("huiliu-taobao/", env!("CARGO_PKG_VERSION"));
/// TMC wants the client's intranet address for its console; a sans-IO plugin has none to give.
const INTRANET_IP: &str = "127.0.0.1";
/// Told to TMC when the host could not store a message.
const FAILED_MSG: &str = "huiliu: message not stored, please redeliver";

/// `__kind` values of SEND frames.
mod kind {
    pub const PULL_REQUEST: i16 = 1;
    pub const CONFIRM: i16 = 2;
    pub const DATA: i64 = 3;
    pub const FAILED: i16 = 20;
}

/// What the connector remembers of the current socket.
#[derive(Clone, Default)]
pub(crate) struct Session {
    /// The Token from CONNECTACK; `Some` while the session is up.
    token: Option<String>,
}

/// The session Token authenticates frames, so `Debug` says only whether there is one.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("connected", &self.token.is_some()).finish()
    }
}

impl Session {
    /// Starts a new socket: forgets the old session and returns the CONNECT frame.
    pub(crate) fn open(&mut self, settings: &Settings, now: Millis) -> Frame {
        self.token = None;
        Frame::Binary(connect_frame(settings, now).encode())
    }

    /// The host lost or closed the socket; its Token is void.
    pub(crate) fn closed(&mut self) {
        self.token = None;
    }

    /// A pull request while the session is up, nothing before.
    pub(crate) fn tick(&self) -> Vec<Frame> {
        self.token.as_deref().map(|t| vec![binary(pull_frame(t))]).unwrap_or_default()
    }

    /// Handles one unit of data from the socket.
    pub(crate) fn on_data(&mut self, settings: &Settings, data: ChannelData, now: Millis) -> ChannelOutcome {
        let bytes = match data {
            ChannelData::Frame(Frame::Binary(bytes)) => bytes,
            ChannelData::Frame(Frame::Text(_)) => {
                return rejected(RejectKind::Malformed, "TMC sends binary frames, got a text frame");
            }
            ChannelData::Chunk(_) | ChannelData::Response(_) => {
                return rejected(RejectKind::Malformed, "TMC is a WebSocket channel, got HTTP data");
            }
        };
        let frame = match TmcFrame::decode(&bytes) {
            Ok(frame) => frame,
            Err(e @ FrameError::TooLarge { .. }) => return rejected(RejectKind::TooLarge, &e.to_string()),
            Err(e) => return rejected(RejectKind::Malformed, &e.to_string()),
        };
        match frame.message_type {
            MessageType::ConnectAck => self.on_connect_ack(&frame, settings),
            MessageType::Send => self.on_send(&frame, &bytes, settings, now),
            MessageType::SendAck => {
                ChannelOutcome { status: Some(describe_send_ack(&frame)), ..ChannelOutcome::default() }
            }
            MessageType::Connect => rejected(RejectKind::Malformed, "unexpected CONNECT frame from the server"),
        }
    }

    fn on_connect_ack(&mut self, frame: &TmcFrame, settings: &Settings) -> ChannelOutcome {
        let code = frame.status_code.unwrap_or(0);
        if code != 0 {
            self.token = None;
            return ChannelOutcome {
                control: refusal(code, frame.status_phrase.as_deref()),
                ..ChannelOutcome::default()
            };
        }
        let Some(token) = frame.token.clone().filter(|t| !t.is_empty()) else {
            self.token = None;
            let reason = "TMC accepted the connection but sent no Token".to_owned();
            return ChannelOutcome {
                control: ChannelControl::Reconnect { reason, min_delay_ms: RECONNECT_DELAY_MS },
                ..ChannelOutcome::default()
            };
        };
        let pull = binary(pull_frame(&token));
        self.token = Some(token);
        ChannelOutcome {
            send: vec![pull],
            status: Some(format!("connected to TMC as group `{}`", settings.tmc_group)),
            state: Some(ChannelState::Connected),
            ..ChannelOutcome::default()
        }
    }

    fn on_send(&self, frame: &TmcFrame, raw: &[u8], settings: &Settings, now: Millis) -> ChannelOutcome {
        match frame.custom("__kind").and_then(Value::as_i64) {
            Some(kind::DATA) => {}
            Some(other) => {
                return ChannelOutcome {
                    status: Some(format!("ignored TMC SEND of __kind {other}")),
                    ..ChannelOutcome::default()
                };
            }
            None => return rejected(RejectKind::Malformed, "TMC SEND frame without an integer __kind"),
        }
        let (batch, status) = self.data_batch(frame, raw, settings, now);
        ChannelOutcome { batches: vec![batch], status, ..ChannelOutcome::default() }
    }

    /// One data message as one batch, with its confirm and its failure frame.
    fn data_batch(&self, frame: &TmcFrame, raw: &[u8], settings: &Settings, now: Millis) -> (AckBatch, Option<String>) {
        let dead = |reason: String, event_id: Option<String>| DeadLetter { reason, event_id, raw: raw.to_vec() };
        let Some(id) = frame.custom("id").and_then(Value::as_i64) else {
            let letter = dead("TMC data message without an integer id; it cannot be confirmed".into(), None);
            return (AckBatch { dead_letters: vec![letter], ..AckBatch::default() }, None);
        };
        let token = self.token.as_deref();
        let mut batch = AckBatch {
            on_durable: vec![binary(confirm_frame(token, id))],
            on_failure: vec![binary(failed_frame(token, id))],
            ..AckBatch::default()
        };
        let text = |key: &str| frame.custom(key).and_then(Value::as_str);
        let (Some(topic), Some(content)) = (text("topic"), text("content")) else {
            batch
                .dead_letters
                .push(dead("TMC data message without a topic or content string".into(), Some(id.to_string())));
            return (batch, None);
        };
        let topic_kind = Topic::of(topic, &settings.chat_topic);
        let message = Message { id, content, outtime: frame.custom("outtime").and_then(Value::as_millis) };
        let cx = Context { shop: &settings.shop_id, now };
        let mut status = None;
        match inbound::decode(topic_kind, &message, cx) {
            Ok(Some(event)) => batch.events.push(event),
            Ok(None) => status = Some(format!("confirmed TMC message {id} of unhandled topic `{topic}`")),
            Err(e) => batch.dead_letters.push(dead(format!("{topic}: {}", e.reason), e.event_id)),
        }
        (batch, status)
    }
}

/// What to do after a refused CONNECT: [`refusal_is_final`] decides.
fn refusal(code: i32, phrase: Option<&str>) -> ChannelControl {
    let phrase = phrase.unwrap_or_default();
    let reason = format!("TMC refused the connection: status {code} {phrase}").trim_end().to_owned();
    if refusal_is_final(code, phrase) {
        ChannelControl::Fatal {
            reason: format!("{reason} (check app_key and app_secret; retried slowly until they are fixed)"),
        }
    } else {
        ChannelControl::Reconnect { reason, min_delay_ms: RECONNECT_DELAY_MS }
    }
}

/// Whether a refused CONNECT needs an operator: only when its phrase names the credentials (the
/// sign or signature, the app key, the secret) and says nothing of the clock, or when it is a bare
/// 401 with no phrase at all. Anything else may be the platform's passing trouble and is retried.
fn refusal_is_final(code: i32, phrase: &str) -> bool {
    let lower = phrase.to_ascii_lowercase();
    let words: Vec<&str> =
        lower.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).collect();
    let has = |w: &str| words.contains(&w);
    let adjacent = |a: &str, b: &str| words.windows(2).any(|p| p[0] == a && p[1] == b);
    if has("timestamp") || has("time") {
        return false;
    }
    let names_credentials = has("sign")
        || has("signature")
        || has("app_key")
        || has("appkey")
        || has("app_secret")
        || has("secret")
        || adjacent("app", "key");
    names_credentials || (code == 401 && words.is_empty())
}

fn describe_send_ack(frame: &TmcFrame) -> String {
    format!(
        "TMC SENDACK status {} {}",
        frame.status_code.unwrap_or(0),
        frame.status_phrase.as_deref().unwrap_or_default()
    )
    .trim_end()
    .to_owned()
}

fn rejected(kind: RejectKind, reason: &str) -> ChannelOutcome {
    ChannelOutcome { rejected: vec![(kind, reason.to_owned())], ..ChannelOutcome::default() }
}

fn binary(frame: TmcFrame) -> Frame {
    Frame::Binary(frame.encode())
}

/// CONNECT with the signed credentials. Unlike TOP calls, TMC signs `timestamp` as epoch
/// milliseconds, not Beijing wall-clock time.
pub(crate) fn connect_frame(settings: &Settings, now: Millis) -> TmcFrame {
    let timestamp = now.to_string();
    let sign = tmc_connect_sign(&settings.app_secret, &settings.app_key, &settings.tmc_group, &timestamp);
    let s = |v: &str| Value::Str(v.to_owned());
    TmcFrame::new(MessageType::Connect)
        .with("app_key", s(&settings.app_key))
        .with("group_name", s(&settings.tmc_group))
        .with("timestamp", s(&timestamp))
        .with("sign", s(&sign))
        .with("sdk", s(SDK_NAME))
        .with("intranet_ip", s(INTRANET_IP))
}

pub(crate) fn pull_frame(token: &str) -> TmcFrame {
    TmcFrame::new(MessageType::Send).with_token(Some(token)).with("__kind", Value::Int16(kind::PULL_REQUEST))
}

/// The confirm of message `id`. The Token is always known once data flows; without one the
/// frame is sent bare rather than not at all.
pub(crate) fn confirm_frame(token: Option<&str>, id: i64) -> TmcFrame {
    TmcFrame::new(MessageType::Send)
        .with_token(token)
        .with("__kind", Value::Int16(kind::CONFIRM))
        .with("id", Value::Int64(id))
}

/// Asks TMC to redeliver message `id` now. It carries the session Token like every client frame
/// after CONNECT, so the server can tie it to the session.
pub(crate) fn failed_frame(token: Option<&str>, id: i64) -> TmcFrame {
    TmcFrame::new(MessageType::SendAck)
        .with_token(token)
        .with("__kind", Value::Int16(kind::FAILED))
        .with("id", Value::Int64(id))
        .with("msg", Value::Str(FAILED_MSG.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals() {
        let fatal = |c: &ChannelControl| matches!(c, ChannelControl::Fatal { .. });
        assert!(fatal(&refusal(401, Some("invalid sign"))));
        assert!(fatal(&refusal(401, None)));
        assert!(fatal(&refusal(403, Some("invalid app_key"))));
        assert!(!fatal(&refusal(401, Some("invalid timestamp"))));
        assert!(!fatal(&refusal(500, Some("server busy"))));
        match refusal(500, Some("server busy")) {
            ChannelControl::Reconnect { reason, min_delay_ms } => {
                assert_eq!(reason, "TMC refused the connection: status 500 server busy");
                assert_eq!(min_delay_ms, RECONNECT_DELAY_MS);
            }
            other => panic!("{other:?}"),
        }
        match refusal(401, Some("invalid sign")) {
            ChannelControl::Fatal { reason } => assert_eq!(
                reason,
                "TMC refused the connection: status 401 invalid sign \
                 (check app_key and app_secret; retried slowly until they are fixed)"
            ),
            other => panic!("{other:?}"),
        }
    }

    /// Each refusal phrase, final (an operator must fix the credentials) or retried with backoff.
    #[test]
    fn refusal_classification_table() {
        const FINAL: bool = true;
        const RETRY: bool = false;
        let table: &[(i32, &str, bool)] = &[
            // Names the credentials: final.
            (401, "invalid sign", FINAL),
            (401, "Invalid Sign", FINAL),
            (401, "invalid signature", FINAL),
            (401, "sign error", FINAL),
            (401, "invalid app_key", FINAL),
            (401, "invalid appkey", FINAL),
            (401, "invalid app key", FINAL),
            (401, "app_key not exist", FINAL),
            (401, "bad app secret", FINAL),
            (403, "invalid app_key", FINAL),
            (500, "invalid sign", FINAL),
            // A bare 401 (the README's promise).
            (401, "", FINAL),
            (401, "   ", FINAL),
            // The clock, not the credentials.
            (401, "invalid timestamp", RETRY),
            (401, "sign expired: timestamp out of range", RETRY),
            // Any other 401 phrase: the platform's trouble, retried.
            (401, "unauthorized", RETRY),
            (401, "server busy", RETRY),
            (401, "too many connections", RETRY),
            (401, "group is being rebalanced", RETRY),
            (401, "session design changed", RETRY),
            (401, "please assign a group later", RETRY),
            // Other statuses.
            (500, "server is busy", RETRY),
            (503, "", RETRY),
            (403, "", RETRY),
        ];
        for &(code, phrase, want) in table {
            assert_eq!(refusal_is_final(code, phrase), want, "status {code} `{phrase}`");
            let control = refusal(code, if phrase.is_empty() { None } else { Some(phrase) });
            let fatal = matches!(control, ChannelControl::Fatal { .. });
            assert_eq!(fatal, want, "status {code} `{phrase}`: {control:?}");
        }
    }

    #[test]
    fn a_connect_ack_reports_connected_as_data() {
        let config = huiliu_sdk::ShopConfig::new("s1").with("app_key", "k").with("app_secret", "s");
        let settings = Settings::from_config(&config).expect("valid");
        let mut session = Session::default();
        let _ = session.open(&settings, 1_704_074_400_000);
        let ack = TmcFrame::new(MessageType::ConnectAck).with_token(Some("tok"));
        let out = session.on_data(&settings, ChannelData::Frame(binary(ack)), 1_704_074_400_000);
        assert_eq!(out.state, Some(ChannelState::Connected));
        assert_eq!(out.reported_state(), Some(ChannelState::Connected));
        assert_eq!(out.status.as_deref(), Some("connected to TMC as group `default`"));
        assert_eq!(out.send.len(), 1, "a pull at once");

        let mut refused = TmcFrame::new(MessageType::ConnectAck);
        refused.status_code = Some(401);
        refused.status_phrase = Some("server busy".into());
        let out = session.on_data(&settings, ChannelData::Frame(binary(refused)), 1_704_074_400_000);
        assert_eq!(out.state, None, "a refusal says what to do through the control");
        assert!(matches!(out.control, ChannelControl::Reconnect { .. }), "{:?}", out.control);
    }
}
