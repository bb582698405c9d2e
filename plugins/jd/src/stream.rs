//! The JOS message stream (public, legacy; PROTOCOLS.md §3.2).
//!
//! The connect is a signed form POST; the answer is a never-ending body of newline-separated
//! JSON packets `{"packet":{"code":N,"msg":…}}`. The host hands the body over in chunks cut
//! anywhere (mid-line, mid-UTF-8 character); [`LineBuffer`] reassembles lines, bounded at
//! [`MAX_LINE`] bytes.
//!
//! Packets carry no signature of their own (the connect is what is signed), so nothing here is
//! rejected as `BadSignature`; a refused connect (bad sign, wrong app key) is an HTTP error with
//! an `error_response` body and stops the channel until an operator acts
//! ([`ChannelControl::Fatal`]; the host retries it slowly). Packet 200 reports
//! [`ChannelState::Connected`]; 101 and 102 reconnect with the host's backoff.
//!
//! The stream has no per-message acknowledgement: every business message becomes an
//! [`AckBatch`] with empty `on_durable`/`on_failure`. A message lost between the stream and
//! durable storage is only redelivered if the platform resends it (it reports gaps with packet
//! 203); repeats are absorbed by the host's dedupe on `msg_id`.

use huiliu_sdk::{
    AckBatch, ChannelControl, ChannelOutcome, ChannelState, HttpRequest, HttpResponse, Millis, RejectKind,
};
use serde_json::Value;

use crate::api::FORM_CONTENT_TYPE;
use crate::chat::{Business, ChatScope, decode_business};
use crate::json::{clip, code_text, display, int, text};
use crate::sign::{SignMethod, sign};

/// The one channel this connector opens.
pub const CHANNEL: &str = "stream";
/// The longest line kept; a longer one is dropped (and reported) instead of growing memory.
pub const MAX_LINE: usize = 1 << 20;
/// The platform closes a connection after this long.
pub const MAX_CONNECTION_AGE_MS: Millis = 86_400_000;
/// Wait after packet 103 when its `msg` gives no delay.
pub const DEFAULT_WAIT_MS: u64 = 30_000;
/// Wait after packet 104: another client holds the stream, so reconnecting at once would only
/// steal it back and forth.
pub const REPLACED_WAIT_MS: u64 = 60_000;
/// Upper bound on a server-requested wait, so a garbled number cannot park the channel.
pub const MAX_WAIT_MS: u64 = 3_600_000;
/// JOS codes that mean the connect itself is wrong (sign, app key, permission): retrying
/// cannot help until the configuration changes.
const FATAL_CODES: [&str; 5] = ["11", "12", "20", "21", "24"];
/// JOS app call limit: back off before reconnecting.
const CALL_LIMIT: &str = "2";

/// The signed connect request (form `app_key`, `id` = app key, optional `user`, `timestamp`
/// in ms, `sign`).
pub fn connect_request(url: &str, app_key: &str, app_secret: &str, user: Option<&str>, now: Millis) -> HttpRequest {
    let timestamp = now.to_string();
    let mut params: Vec<(&str, &str)> = vec![("app_key", app_key), ("id", app_key), ("timestamp", &timestamp)];
    if let Some(user) = user.filter(|u| !u.is_empty()) {
        params.push(("user", user));
    }
    let signature = sign(app_secret, SignMethod::Md5, params.iter().copied());
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().copied())
        .append_pair("sign", &signature)
        .finish();
    HttpRequest {
        method: "POST".to_owned(),
        url: url.to_owned(),
        headers: vec![("content-type".to_owned(), FORM_CONTENT_TYPE.to_owned())],
        body: body.into_bytes(),
    }
}

/// A piece of the body between newlines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Complete(Vec<u8>),
    /// A line longer than [`MAX_LINE`] was dropped.
    Oversized,
}

/// Reassembles newline-terminated lines from chunks, holding at most [`MAX_LINE`] bytes.
#[derive(Debug, Default)]
pub struct LineBuffer {
    partial: Vec<u8>,
    /// Dropping the rest of an oversized line up to its newline.
    skipping: bool,
}

impl LineBuffer {
    /// The lines `chunk` completes, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Line> {
        let mut lines = Vec::new();
        let mut pieces = chunk.split(|b| *b == b'\n').peekable();
        while let Some(piece) = pieces.next() {
            let ends_line = pieces.peek().is_some();
            if self.skipping {
                self.skipping = !ends_line;
                continue;
            }
            if self.partial.len() + piece.len() > MAX_LINE {
                lines.push(Line::Oversized);
                self.partial = Vec::new();
                self.skipping = !ends_line;
                continue;
            }
            self.partial.extend_from_slice(piece);
            if ends_line {
                lines.push(Line::Complete(std::mem::take(&mut self.partial)));
            }
        }
        lines
    }

    /// Forgets any partial line (the connection is gone).
    pub fn clear(&mut self) {
        self.partial = Vec::new();
        self.skipping = false;
    }

    /// Bytes held for an unfinished line.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }
}

/// The stream's state between calls.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    lines: LineBuffer,
    connected_at: Option<Millis>,
}

impl StreamState {
    /// A new connection is being opened at `now`.
    pub fn opened(&mut self, now: Millis) {
        self.lines.clear();
        self.connected_at = Some(now);
    }

    /// The connection is gone.
    pub fn closed(&mut self) {
        self.lines.clear();
        self.connected_at = None;
    }

    /// The response head: 200 starts the body; anything else is a refused connect.
    pub fn on_head(&mut self, head: &HttpResponse, now: Millis) -> ChannelOutcome {
        if head.status == 200 {
            self.connected_at = Some(now);
            // The body is open; packet 200 says the stream is connected.
            return ChannelOutcome {
                status: Some("stream open (HTTP 200)".to_owned()),
                state: Some(ChannelState::Connecting),
                ..Default::default()
            };
        }
        self.closed();
        ChannelOutcome { control: refusal(head), ..Default::default() }
    }

    /// A body chunk: every line it completes, then the connection-age check.
    pub fn on_chunk(&mut self, chunk: &[u8], scope: ChatScope<'_>, now: Millis) -> ChannelOutcome {
        let mut out = OutcomeBuilder::default();
        for line in self.lines.push(chunk) {
            match line {
                Line::Complete(bytes) => handle_line(&bytes, scope, now, &mut out),
                Line::Oversized => out.reject(RejectKind::Malformed, format!("line over {MAX_LINE} bytes dropped")),
            }
        }
        if let Some(since) = self.connected_at
            && now.saturating_sub(since) > MAX_CONNECTION_AGE_MS
        {
            out.control(ChannelControl::Reconnect {
                reason: "connection older than 86,400 s, the platform's limit".to_owned(),
                min_delay_ms: 0,
            });
        }
        out.finish()
    }
}

/// What a refused connect means for the channel.
fn refusal(head: &HttpResponse) -> ChannelControl {
    let err = serde_json::from_slice::<Value>(&head.body).ok().and_then(|v| v.get("error_response").cloned());
    let code = err.as_ref().and_then(|e| e.get("code")).and_then(code_text);
    let words = err
        .as_ref()
        .map(|e| ["zh_desc", "en_desc"].iter().filter_map(|k| e.get(*k).and_then(text)).collect::<Vec<_>>().join(" / "))
        .unwrap_or_else(|| clip(&String::from_utf8_lossy(&head.body), 200));
    let reason = match &code {
        Some(code) => format!("stream connect refused: HTTP {}, code {code}: {words}", head.status),
        None => format!("stream connect refused: HTTP {}: {words}", head.status),
    };
    match code.as_deref() {
        Some(c) if FATAL_CODES.contains(&c) => {
            ChannelControl::Fatal { reason: format!("{reason} (check app_key, app_secret and the app's permissions)") }
        }
        Some(CALL_LIMIT) => ChannelControl::Reconnect { reason, min_delay_ms: REPLACED_WAIT_MS },
        _ if head.status == 429 => ChannelControl::Reconnect { reason, min_delay_ms: REPLACED_WAIT_MS },
        _ => ChannelControl::Reconnect { reason, min_delay_ms: 0 },
    }
}

/// One complete line of the body.
fn handle_line(line: &[u8], scope: ChatScope<'_>, now: Millis, out: &mut OutcomeBuilder) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let value = match serde_json::from_slice::<Value>(line) {
        Ok(v) => v,
        Err(e) => {
            let shown = clip(&String::from_utf8_lossy(line), 120);
            return out.reject(RejectKind::Malformed, format!("invalid JSON line ({e}): {shown}"));
        }
    };
    let Some(packet) = value.get("packet").filter(|p| p.is_object()) else {
        return out.reject(RejectKind::Malformed, format!("not a stream packet: {}", display(&value, 120)));
    };
    let Some(code) = packet.get("code").and_then(int) else {
        return out.reject(RejectKind::Malformed, format!("packet without a numeric code: {}", display(packet, 120)));
    };
    let msg = packet.get("msg");
    let said = || msg.map(|m| display(m, 200)).unwrap_or_default();
    match code {
        200 => {
            out.status("connected".to_owned());
            out.state(ChannelState::Connected);
        }
        201 => out.status("heartbeat".to_owned()),
        202 => business(msg, line, scope, now, out),
        203 => out.status(format!("lost packet: {}", said())),
        105 => out.status(format!("backlog: {}", said())),
        101 => out.control(ChannelControl::Reconnect { reason: "stream expired (101)".to_owned(), min_delay_ms: 0 }),
        102 => out.control(ChannelControl::Reconnect {
            reason: "server asked to reconnect (102)".to_owned(),
            min_delay_ms: 0,
        }),
        103 => {
            let wait = msg.and_then(int).map_or(DEFAULT_WAIT_MS, |ms| u64::try_from(ms).unwrap_or(0).min(MAX_WAIT_MS));
            out.control(ChannelControl::Reconnect {
                reason: format!("server asked to wait {wait} ms, then reconnect (103)"),
                min_delay_ms: wait,
            });
        }
        104 => out.control(ChannelControl::Reconnect {
            reason: "another client took over this stream (104: replaced by a newer connection); \
                     check that only one gateway connects with this app key"
                .to_owned(),
            min_delay_ms: REPLACED_WAIT_MS,
        }),
        other => out.status(format!("unknown packet code {other}: {}", said())),
    }
}

/// Packet 202: one batch per business message.
fn business(msg: Option<&Value>, line: &[u8], scope: ChatScope<'_>, now: Millis, out: &mut OutcomeBuilder) {
    match decode_business(msg, line, scope, now) {
        Business::Event(event) => out.batch(AckBatch { events: vec![*event], ..Default::default() }),
        Business::Dead(dead) => out.batch(AckBatch { dead_letters: vec![dead], ..Default::default() }),
        Business::Ignored { kind, id } => out.status(format!(
            "ignored business message of type `{kind}` (msg_id {})",
            id.as_deref().unwrap_or("unknown")
        )),
    }
}

/// Collects what several lines produced into one [`ChannelOutcome`].
#[derive(Debug, Default)]
struct OutcomeBuilder {
    outcome: ChannelOutcome,
    statuses: Vec<String>,
}

impl OutcomeBuilder {
    fn status(&mut self, status: String) {
        self.statuses.push(status);
    }

    /// The latest state a packet reported wins.
    fn state(&mut self, state: ChannelState) {
        self.outcome.state = Some(state);
    }

    fn reject(&mut self, kind: RejectKind, reason: String) {
        self.outcome.rejected.push((kind, reason));
    }

    fn batch(&mut self, batch: AckBatch) {
        self.outcome.batches.push(batch);
    }

    /// Keeps the most severe control: Fatal over Reconnect over Continue, and of two
    /// reconnects the one that waits longer.
    fn control(&mut self, control: ChannelControl) {
        let rank = |c: &ChannelControl| match c {
            ChannelControl::Continue => (0, 0),
            ChannelControl::Reconnect { min_delay_ms, .. } => (1, *min_delay_ms),
            ChannelControl::Fatal { .. } => (2, 0),
        };
        if rank(&control) > rank(&self.outcome.control) {
            self.outcome.control = control;
        }
    }

    fn finish(mut self) -> ChannelOutcome {
        if !self.statuses.is_empty() {
            self.outcome.status = Some(self.statuses.join("; "));
        }
        self.outcome
    }
}

#[cfg(test)]
mod tests {
    use huiliu_sdk::crypto::{Case, md5_hex};

    use super::*;

    const SCOPE: ChatScope<'static> =
        ChatScope { shop_id: "shop-1", chat_type: "dd_chat", order_prefix: "order_", refund_prefix: "refund_" };

    fn complete(lines: &[&str]) -> Vec<Line> {
        lines.iter().map(|l| Line::Complete(l.as_bytes().to_vec())).collect()
    }

    #[test]
    fn lines_survive_any_cut() {
        let body = "{\"a\":\"汇流\"}\n{\"b\":2}\n";
        let bytes = body.as_bytes();
        for cut in 0..=bytes.len() {
            let mut buf = LineBuffer::default();
            let (head, tail) = bytes.split_at(cut);
            let mut got = buf.push(head);
            got.extend(buf.push(tail));
            assert_eq!(got, complete(&["{\"a\":\"汇流\"}", "{\"b\":2}"]), "cut at {cut}");
            assert_eq!(buf.pending(), 0);
        }
    }

    #[test]
    fn oversized_line_is_dropped_once_and_the_next_line_survives() {
        let mut buf = LineBuffer::default();
        let big = vec![b'x'; MAX_LINE / 2 + 1];
        assert_eq!(buf.push(&big), []);
        assert_eq!(buf.push(&big), [Line::Oversized]);
        assert_eq!(buf.pending(), 0);
        assert_eq!(buf.push(&big), [], "rest of the long line is skipped");
        assert_eq!(buf.push(b"tail\n{\"ok\":1}\n"), complete(&["{\"ok\":1}"]));
        // A line of exactly MAX_LINE bytes is kept.
        let exact = vec![b'y'; MAX_LINE];
        assert_eq!(buf.push(&exact), []);
        assert_eq!(buf.push(b"\n"), [Line::Complete(exact)]);
        // An oversized line inside one chunk.
        let mut chunk = vec![b'z'; MAX_LINE + 1];
        chunk.extend_from_slice(b"\nnext\n");
        assert_eq!(buf.push(&chunk), [Line::Oversized, Line::Complete(b"next".to_vec())]);
    }

    #[test]
    fn connect_is_signed_over_sorted_fields() {
        let req = connect_request("http://127.0.0.1:1/stream", "k1", "s1", Some("u1"), 1_451_620_800_000);
        let body = String::from_utf8(req.body).expect("utf-8");
        let expected = md5_hex(&[b"s1", b"app_keyk1idk1timestamp1451620800000useru1", b"s1"], Case::Upper);
        assert_eq!(body, format!("app_key=k1&id=k1&timestamp=1451620800000&user=u1&sign={expected}"));
        // Computed independently with Python's hashlib (regression guard).
        assert_eq!(expected, "987429216B12E9B09067B6FDEC61E6A4");
    }

    #[test]
    fn refused_connects() {
        let head = |status, body: &str| HttpResponse::json(status, body.to_owned());
        let bad_sign =
            head(403, r#"{"error_response":{"code":"12","zh_desc":"签名无效","en_desc":"Invalid signature"}}"#);
        assert!(matches!(refusal(&bad_sign), ChannelControl::Fatal { reason } if reason.contains("code 12: 签名无效")));
        assert!(matches!(refusal(&head(500, "")), ChannelControl::Reconnect { min_delay_ms: 0, .. }));
        assert!(matches!(
            refusal(&head(403, r#"{"error_response":{"code":2}}"#)),
            ChannelControl::Reconnect { min_delay_ms: REPLACED_WAIT_MS, .. }
        ));
    }

    #[test]
    fn connection_age_limit() {
        let mut s = StreamState::default();
        s.opened(0);
        let ok = s.on_chunk(b"{\"packet\":{\"code\":201}}\n", SCOPE, MAX_CONNECTION_AGE_MS);
        assert_eq!(ok.control, ChannelControl::Continue);
        let old = s.on_chunk(b"{\"packet\":{\"code\":201}}\n", SCOPE, MAX_CONNECTION_AGE_MS + 1);
        assert!(matches!(old.control, ChannelControl::Reconnect { .. }));
        s.closed();
        let closed = s.on_chunk(b"", SCOPE, MAX_CONNECTION_AGE_MS * 3);
        assert_eq!(closed.control, ChannelControl::Continue);
    }

    #[test]
    fn severest_control_wins() {
        let mut s = StreamState::default();
        let out = s.on_chunk(
            b"{\"packet\":{\"code\":102}}\n{\"packet\":{\"code\":103,\"msg\":\"5000\"}}\n{\"packet\":{\"code\":101}}\n",
            SCOPE,
            0,
        );
        assert!(matches!(out.control, ChannelControl::Reconnect { min_delay_ms: 5000, .. }), "{:?}", out.control);
    }

    #[test]
    fn connected_is_reported_as_data() {
        let mut s = StreamState::default();
        let head = s.on_head(&HttpResponse::json(200, Vec::new()), 0);
        assert_eq!(head.state, Some(ChannelState::Connecting), "the body is open, not yet connected");
        // Packet 200 with a heartbeat in the same chunk: the text joins both, the state is data.
        let out = s.on_chunk(b"{\"packet\":{\"code\":200}}\n{\"packet\":{\"code\":201}}\n", SCOPE, 1);
        assert_eq!(out.status.as_deref(), Some("connected; heartbeat"));
        assert_eq!(out.state, Some(ChannelState::Connected));
        assert_eq!(out.reported_state(), Some(ChannelState::Connected));
        let beat = s.on_chunk(b"{\"packet\":{\"code\":201}}\n", SCOPE, 2);
        assert_eq!(beat.state, None, "a heartbeat leaves the state as it was");
        let refused = s.on_head(&HttpResponse::json(500, Vec::new()), 3);
        assert_eq!(refused.state, None, "a refusal says what to do through the control");
    }
}
