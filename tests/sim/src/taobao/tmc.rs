//! The TMC server side: CONNECT verification, pull / confirm / failed, at-least-once redelivery.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::frame::{self, Frame, Header, Value};
use super::{MsgState, Shared, TIMESTAMP_TOLERANCE_MS, TmcMessage, TmcState, sign};
use crate::{Faults, now_ms};

/// How long a new connection may take to send its CONNECT.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// An accepted TMC session.
pub(crate) struct Session {
    pub id: u64,
    pub tx: mpsc::UnboundedSender<Out>,
}

/// What the connection task writes.
pub(crate) enum Out {
    Frame(Vec<u8>),
    /// Write the frame, then drop the TCP connection without a closing handshake.
    FrameThenDrop(Vec<u8>),
}

/// A CONNECT refusal: status code, status phrase, journal reason.
struct Refusal(i32, String, String);

impl Shared {
    /// Checks a CONNECT frame; returns the group name.
    fn check_connect(&self, f: &Frame) -> Result<String, Refusal> {
        if f.message_type != frame::CONNECT {
            return Err(Refusal(400, "connect required".into(), format!("first frame has type {}", f.message_type)));
        }
        let field = |k: &str| {
            f.get(k).and_then(|v| v.as_str().map(str::to_owned).or_else(|| v.as_i64().map(|n| n.to_string())))
        };
        let (Some(app_key), Some(group), Some(ts), Some(sign)) =
            (field("app_key"), field("group_name"), field("timestamp"), field("sign"))
        else {
            return Err(Refusal(
                400,
                "invalid request".into(),
                "missing app_key, group_name, timestamp or sign".into(),
            ));
        };
        if app_key != self.cfg.app_key {
            return Err(Refusal(401, "invalid app_key".into(), format!("unknown app_key {app_key:?}")));
        }
        if group.is_empty() {
            return Err(Refusal(400, "invalid group_name".into(), "empty group_name".into()));
        }
        match ts.parse::<i64>() {
            Ok(ms) if (now_ms() - ms).abs() <= TIMESTAMP_TOLERANCE_MS => {}
            _ => return Err(Refusal(401, "invalid timestamp".into(), format!("timestamp {ts:?} not within 10 min"))),
        }
        let want = sign::tmc_connect_sign(&self.cfg.app_secret, &app_key, &group, &ts);
        if sign != want {
            return Err(Refusal(401, "invalid sign".into(), format!("sign {sign} does not match")));
        }
        if Faults::take(&self.faults.refuse_connects) {
            // The platform refuses a correctly signed CONNECT for its own reasons (PROTOCOLS.md
            // §1.2: a non-zero StatusCode with a StatusPhrase, then the socket closes).
            let phrase = self.faults.refuse_connect_phrase.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let phrase = if phrase.is_empty() { "server is busy".to_owned() } else { phrase };
            return Err(Refusal(401, phrase.clone(), format!("{phrase} (fault refuse_connects)")));
        }
        if Faults::take(&self.faults.bad_signature_pushes) {
            return Err(Refusal(401, "invalid sign".into(), "invalid sign (fault bad_signature_pushes)".into()));
        }
        Ok(group)
    }

    /// Pushes to `session` every pending message and, if `stale_too`, every message left
    /// unconfirmed longer than the redelivery timeout. Honours `drop_connections`.
    pub(crate) fn push_due(&self, tmc: &mut TmcState, session: u64, stale_too: bool) {
        let Some(tx) = tmc.sessions.iter().find(|s| s.id == session).map(|s| s.tx.clone()) else { return };
        let now = Instant::now();
        let after = self.redeliver_after();
        let due: Vec<i64> = tmc
            .unconfirmed
            .iter()
            .filter_map(|id| tmc.messages.get(id))
            .filter(|m| match m.state {
                MsgState::Pending => true,
                MsgState::InFlight { since, .. } => stale_too && now.duration_since(since) >= after,
                MsgState::Confirmed => false,
            })
            .map(|m| m.id)
            .collect();
        for id in due {
            let Some(m) = tmc.messages.get_mut(&id) else { continue };
            let copies = 1 + std::mem::take(&mut m.extra_copies);
            let before = m.sends;
            m.sends += copies;
            m.state = MsgState::InFlight { session, since: now };
            let bytes = data_frame(m, self.user_id).encode();
            tmc.redeliveries += if before > 0 { copies } else { copies - 1 };
            for i in 0..copies {
                let last = i + 1 == copies;
                if last && Faults::take(&self.faults.drop_connections) {
                    let _ = tx.send(Out::FrameThenDrop(bytes));
                    return;
                }
                let _ = tx.send(Out::Frame(bytes.clone()));
            }
        }
    }

    fn confirm(&self, id: i64) -> Result<(), String> {
        let mut tmc = self.tmc();
        let Some(m) = tmc.messages.get_mut(&id) else { return Err(format!("tmc confirm: unknown id {id}")) };
        if m.state != MsgState::Confirmed {
            m.state = MsgState::Confirmed;
            tmc.unconfirmed.remove(&id);
            tmc.confirmed.push(id);
            drop(tmc);
            self.wake_confirmed(id);
        }
        Ok(())
    }

    fn failed(&self, session: u64, id: i64) -> Result<(), String> {
        let mut tmc = self.tmc();
        match tmc.messages.get_mut(&id) {
            None => return Err(format!("tmc failed: unknown id {id}")),
            Some(m) if m.state == MsgState::Confirmed => return Ok(()),
            Some(m) => m.state = MsgState::Pending,
        }
        self.push_due(&mut tmc, session, false);
        Ok(())
    }

    /// Forgets a closed session; its unconfirmed messages go back to pending.
    fn close_session(&self, session: u64) {
        let mut tmc = self.tmc();
        tmc.sessions.retain(|s| s.id != session);
        for m in tmc.messages.values_mut() {
            if matches!(m.state, MsgState::InFlight { session: s, .. } if s == session) {
                m.state = MsgState::Pending;
            }
        }
    }
}

fn data_frame(m: &TmcMessage, user_id: i64) -> Frame {
    Frame::new(frame::SEND)
        .custom("__kind", Value::I16(frame::KIND_DATA as i16))
        .custom("id", Value::I64(m.id))
        .custom("topic", Value::Str(m.topic.clone()))
        .custom("content", Value::Str(m.content.clone()))
        .custom("userid", Value::I64(user_id))
        .custom("dataid", Value::I64(m.dataid))
        .custom("publisher", Value::Str("4".into()))
        .custom("outtime", Value::Date(m.outtime_ms))
}

async fn next_binary(ws: &mut WebSocketStream<TcpStream>) -> Option<Result<Vec<u8>, &'static str>> {
    loop {
        match ws.next().await? {
            Ok(Message::Binary(b)) => return Some(Ok(b.to_vec())),
            Ok(Message::Text(_)) => return Some(Err("text message (TMC frames are binary)")),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Serves one TMC WebSocket connection from handshake to close.
pub(crate) async fn serve_connection(shared: Arc<Shared>, stream: TcpStream) {
    let Ok(Ok(mut ws)) = tokio::time::timeout(CONNECT_WAIT, tokio_tungstenite::accept_async(stream)).await else {
        shared.journal.reject("tmc: websocket handshake failed");
        return;
    };
    shared.journal.connections.fetch_add(1, Ordering::SeqCst);
    let conn = shared.next_seq();

    let first = match tokio::time::timeout(CONNECT_WAIT, next_binary(&mut ws)).await {
        Ok(Some(Ok(b))) => b,
        Ok(Some(Err(why))) => {
            shared.journal.reject(format!("tmc connect: {why}"));
            let _ = ws.close(None).await;
            return;
        }
        Ok(None) => return,
        Err(_) => {
            shared.journal.reject("tmc connect: no CONNECT within 10 s");
            let _ = ws.close(None).await;
            return;
        }
    };
    let checked = Frame::decode(&first)
        .map_err(|e| Refusal(400, "invalid frame".into(), format!("malformed CONNECT: {e}")))
        .and_then(|f| shared.check_connect(&f));
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let token = match checked {
        Err(Refusal(code, phrase, reason)) => {
            shared.journal.reject(format!("tmc connect: {reason}"));
            let ack = Frame::new(frame::CONNECTACK)
                .header(Header::StatusCode(code))
                .header(Header::StatusPhrase(phrase))
                .encode();
            let _ = ws.send(Message::Binary(ack.into())).await;
            let _ = ws.close(None).await;
            return;
        }
        Ok(_group) => {
            let token = format!("tmc-{conn}-{:x}", now_ms());
            let ack = Frame::new(frame::CONNECTACK)
                .header(Header::StatusCode(0))
                .header(Header::Token(token.clone()))
                .encode();
            // The ack is queued before the session becomes visible to pushes, so it goes first.
            let mut tmc = shared.tmc();
            let _ = tx.send(Out::Frame(ack));
            tmc.sessions.push(Session { id: conn, tx });
            token
        }
    };

    let shutdown = shutdown_signal(shared.shutdown.subscribe());
    tokio::pin!(shutdown);
    let mut close_gracefully = true;
    loop {
        tokio::select! {
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Binary(b))) => {
                    if let Err(reason) = handle_client_frame(&shared, conn, &token, &b) {
                        shared.journal.reject(format!("tmc: {reason}"));
                        break;
                    }
                }
                Some(Ok(Message::Text(_))) => {
                    shared.journal.reject("tmc: text message (TMC frames are binary)");
                    break;
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    close_gracefully = false;
                    break;
                }
                Some(Ok(_)) => {}
            },
            out = rx.recv() => match out {
                Some(Out::Frame(b)) => {
                    if ws.send(Message::Binary(b.into())).await.is_err() {
                        close_gracefully = false;
                        break;
                    }
                }
                Some(Out::FrameThenDrop(b)) => {
                    let _ = ws.send(Message::Binary(b.into())).await;
                    close_gracefully = false;
                    break;
                }
                None => break,
            },
            () = &mut shutdown => break,
        }
    }
    shared.close_session(conn);
    if close_gracefully {
        let _ = ws.close(None).await;
    }
}

/// Resolves once the simulator shuts down.
async fn shutdown_signal(mut rx: tokio::sync::watch::Receiver<bool>) {
    loop {
        let down = *rx.borrow_and_update();
        if down || rx.changed().await.is_err() {
            return;
        }
    }
}

/// Handles one frame from a connected client; an error closes the connection.
fn handle_client_frame(shared: &Shared, conn: u64, token: &str, bytes: &[u8]) -> Result<(), String> {
    let f = Frame::decode(bytes).map_err(|e| format!("malformed frame from client: {e}"))?;
    let id = || f.get_i64("id").ok_or_else(|| "frame without a readable id".to_owned());
    match (f.message_type, f.kind()) {
        (frame::SEND, kind) => {
            if f.token() != Some(token) {
                return Err(format!("SEND with a missing or wrong Token {:?}", f.token()));
            }
            match kind {
                Some(frame::KIND_PULL) => {
                    let mut tmc = shared.tmc();
                    shared.push_due(&mut tmc, conn, true);
                }
                Some(frame::KIND_CONFIRM) => {
                    if let Err(reason) = shared.confirm(id()?) {
                        shared.journal.reject(reason);
                    }
                }
                other => shared.journal.reject(format!("tmc: SEND with unexpected __kind {other:?}")),
            }
        }
        (frame::SENDACK, Some(frame::KIND_FAILED)) => {
            if f.token().is_some_and(|t| t != token) {
                return Err(format!("SENDACK with a wrong Token {:?}", f.token()));
            }
            if let Err(reason) = shared.failed(conn, id()?) {
                shared.journal.reject(reason);
            }
        }
        (message_type, kind) => {
            shared.journal.reject(format!("tmc: unexpected frame type {message_type} __kind {kind:?}"));
        }
    }
    Ok(())
}
