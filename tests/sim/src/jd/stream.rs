//! The JOS message stream (PROTOCOLS.md §3.2): connect verification and one connection's life.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::http::{self, Request, Response};
use super::{ConnHandle, Ctl, Faults, Inner, Refusal, TIMESTAMP_TOLERANCE_MS, collect_params, error_body, refuse};
use crate::now_ms;

/// A write that takes longer than this counts as failed (the peer stopped reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Verifies a connect form; a refusal is the HTTP error answer (recorded in the journal).
pub(super) fn verify_connect(inner: &Inner, req: &Request) -> Result<(), Response> {
    let check = || -> Result<(), (u16, Refusal)> {
        if req.method != "POST" {
            return Err((
                405,
                refuse("0", format!("method {} not allowed (the stream connect is a POST form)", req.method)),
            ));
        }
        let params = collect_params(req).map_err(|r| (403, r))?;
        super::verify_key_and_sign(inner, &params).map_err(|r| (if r.code == "11" { 400 } else { 403 }, r))?;
        match params.get("id").map(String::as_str) {
            Some(id) if id == inner.cfg.app_key => {}
            other => return Err((403, refuse("21", format!("stream id {other:?} must equal app_key")))),
        }
        let ts = match params.get("timestamp").map(String::as_str) {
            None | Some("") => return Err((400, refuse("7", "missing timestamp"))),
            Some(t) => t,
        };
        let Ok(at) = ts.parse::<i64>() else {
            return Err((400, refuse("8", format!("timestamp {ts:?} is not epoch milliseconds"))));
        };
        if (now_ms() - at).abs() > TIMESTAMP_TOLERANCE_MS {
            return Err((400, refuse("8", format!("timestamp {ts} is more than 6 min off"))));
        }
        Ok(())
    };
    check().map_err(|(status, r)| {
        inner.journal.reject(format!("stream connect: code {}: {}", r.code, r.reason));
        Response::json(status, &error_body(r.code))
    })
}

fn packet(code: i64, msg: Value) -> String {
    json!({"packet": {"code": code, "msg": msg}}).to_string()
}

async fn write_line(wr: &mut OwnedWriteHalf, line: &str) -> bool {
    let mut data = Vec::with_capacity(line.len() + 1);
    data.extend_from_slice(line.as_bytes());
    data.push(b'\n');
    matches!(tokio::time::timeout(WRITE_TIMEOUT, http::write_chunk(wr, &data)).await, Ok(Ok(())))
}

enum Drained {
    /// Nothing (more) to write, or no longer the current connection.
    Idle,
    WriteFailed,
    /// `drop_connections` fired after a business message.
    Drop,
}

/// Writes the backlog, oldest first, while this is the current connection.
async fn drain(inner: &Inner, id: u64, wr: &mut OwnedWriteHalf) -> Drained {
    let _writer = inner.drain_lock.lock().await;
    loop {
        let (seq, line, business) = {
            let st = inner.lock_stream();
            if st.current.as_ref().map(|c| c.id) != Some(id) {
                return Drained::Idle;
            }
            match st.backlog.front() {
                Some(p) => (p.seq, p.line.clone(), p.business),
                None => return Drained::Idle,
            }
        };
        if !write_line(wr, &line).await {
            return Drained::WriteFailed;
        }
        {
            let mut st = inner.lock_stream();
            if let Some(pos) = st.backlog.iter().position(|p| p.seq == seq)
                && let Some(mut p) = st.backlog.remove(pos)
                && let Some(done) = p.done.take()
            {
                let _ = done.send(id);
            }
        }
        if business && Faults::take(&inner.faults.drop_connections) {
            return Drained::Drop;
        }
    }
}

/// Serves one accepted stream connection until it ends.
pub(super) async fn run(inner: Arc<Inner>, mut rd: BufReader<OwnedReadHalf>, mut wr: OwnedWriteHalf) {
    if http::write_stream_head(&mut wr).await.is_err() {
        return;
    }
    let (ctl_tx, mut ctl) = mpsc::unbounded_channel();
    let (id, backlog) = {
        let mut st = inner.lock_stream();
        st.next_conn_id += 1;
        let id = st.next_conn_id;
        if let Some(old) = st.current.replace(ConnHandle { id, ctl: ctl_tx }) {
            let _ = old.ctl.send(Ctl::Replaced);
        }
        (id, st.backlog.len())
    };
    inner.journal.connections.fetch_add(1, Ordering::SeqCst);
    Inner::bump(&inner.stream_version);
    let mut backlog_rx = inner.backlog_version.subscribe();
    let mut shutdown = inner.shutdown.clone();
    let started = Instant::now();
    let heartbeat = || Duration::from_millis(inner.heartbeat_ms.load(Ordering::SeqCst));
    let mut next_heartbeat = started + heartbeat();
    let mut ok = write_line(&mut wr, &packet(200, "connected".into())).await;
    if ok && backlog > 0 {
        ok = write_line(&mut wr, &packet(105, backlog.into())).await;
    }
    let mut buf = [0u8; 1024];
    let mut graceful_end = false;
    while ok {
        match drain(&inner, id, &mut wr).await {
            Drained::Idle => {}
            Drained::WriteFailed | Drained::Drop => break,
        }
        let expires = started + Duration::from_millis(inner.max_age_ms.load(Ordering::SeqCst));
        tokio::select! {
            changed = backlog_rx.changed() => ok = changed.is_ok(),
            cmd = ctl.recv() => match cmd {
                Some(Ctl::Raw { line, done }) => {
                    ok = write_line(&mut wr, &line).await;
                    let _ = done.send(ok);
                }
                Some(Ctl::Replaced) => {
                    let _ = write_line(&mut wr, &packet(104, "replaced by a newer connection".into())).await;
                    graceful_end = true;
                    break;
                }
                Some(Ctl::Close) | None => break,
            },
            read = rd.read(&mut buf) => ok = matches!(read, Ok(n) if n > 0),
            _ = tokio::time::sleep_until(next_heartbeat) => {
                ok = write_line(&mut wr, &packet(201, "heartbeat".into())).await;
                next_heartbeat = Instant::now() + heartbeat();
            }
            _ = tokio::time::sleep_until(expires) => {
                let _ = write_line(&mut wr, &packet(101, "stream expired".into())).await;
                graceful_end = true;
                break;
            }
            _ = super::shutdown_signal(&mut shutdown) => break,
        }
    }
    if graceful_end {
        let _ = tokio::time::timeout(WRITE_TIMEOUT, http::write_last_chunk(&mut wr)).await;
    }
    {
        let mut st = inner.lock_stream();
        if st.current.as_ref().is_some_and(|c| c.id == id) {
            st.current = None;
        }
    }
    Inner::bump(&inner.stream_version);
    // Dropping both halves closes the socket.
}
