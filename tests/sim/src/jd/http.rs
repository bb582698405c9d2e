//! A minimal HTTP/1.1 server side, enough for the JOS endpoints.
//!
//! The simulator speaks HTTP on a plain `TcpStream` instead of through a framework so that the
//! message stream can write each packet as one chunk and learn whether the write succeeded (the
//! platform keeps a message in its backlog until then), and can drop the TCP connection on
//! purpose. Supported: keep-alive, `Content-Length` and chunked request bodies,
//! `Expect: 100-continue`, origin- and absolute-form targets.

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const MAX_LINE: u64 = 64 * 1024;
const MAX_HEADERS: usize = 100;
const MAX_BODY: usize = 8 * 1024 * 1024;

/// One parsed request.
#[derive(Debug)]
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub keep_alive: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Query-string parameters, then `application/x-www-form-urlencoded` body parameters,
    /// percent-decoded (`+` decodes to a space, as on the real servers).
    pub fn params(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> =
            form_urlencoded::parse(self.query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let form = match self.header("content-type") {
            Some(ct) => ct.to_ascii_lowercase().contains("application/x-www-form-urlencoded"),
            None => true,
        };
        if form && !self.body.is_empty() {
            out.extend(form_urlencoded::parse(&self.body).map(|(k, v)| (k.into_owned(), v.into_owned())));
        }
        out
    }
}

/// A complete (non-streaming) response.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    pub fn json(status: u16, body: &serde_json::Value) -> Response {
        Response { status, body: body.to_string() }
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

async fn read_line<R: AsyncBufRead + Unpin>(rd: &mut R, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.clear();
    let n = (&mut *rd).take(MAX_LINE).read_until(b'\n', buf).await?;
    if n > 0 && !buf.ends_with(b"\n") {
        return Err(bad("line too long or connection closed mid-line"));
    }
    while buf.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
        buf.pop();
    }
    Ok(n)
}

/// Reads one request. `Ok(None)` when the peer closed the connection between requests.
pub(crate) async fn read_request<R, W>(rd: &mut R, wr: &mut W) -> io::Result<Option<Request>>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut line = Vec::new();
    let request_line = loop {
        if read_line(rd, &mut line).await? == 0 {
            return Ok(None);
        }
        if !line.is_empty() {
            break String::from_utf8(line.clone()).map_err(|_| bad("request line is not UTF-8"))?;
        }
    };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(format!("malformed request line {request_line:?}")));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(bad(format!("unsupported version {version:?}")));
    }
    let mut headers = Vec::new();
    loop {
        if read_line(rd, &mut line).await? == 0 {
            return Err(bad("connection closed in the headers"));
        }
        if line.is_empty() {
            break;
        }
        if headers.len() >= MAX_HEADERS {
            return Err(bad("too many headers"));
        }
        let text = String::from_utf8_lossy(&line);
        let (name, value) = text.split_once(':').ok_or_else(|| bad(format!("malformed header {text:?}")))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let header = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let connection = header("connection").unwrap_or_default().to_ascii_lowercase();
    let keep_alive =
        if version == "HTTP/1.0" { connection.contains("keep-alive") } else { !connection.contains("close") };
    if header("expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue")) {
        wr.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        wr.flush().await?;
    }
    let chunked = header("transfer-encoding").is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        read_chunked(rd, &mut line).await?
    } else if let Some(len) = header("content-length") {
        let len: usize = len.parse().map_err(|_| bad(format!("bad content-length {len:?}")))?;
        if len > MAX_BODY {
            return Err(bad("body too large"));
        }
        let mut body = vec![0; len];
        rd.read_exact(&mut body).await?;
        body
    } else {
        Vec::new()
    };
    // Origin form `/path?q` or absolute form `http://host/path?q`.
    let target = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map(|i| &rest[i..]).unwrap_or("/"),
        None => target,
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Some(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body,
        keep_alive,
    }))
}

async fn read_chunked<R: AsyncBufRead + Unpin>(rd: &mut R, line: &mut Vec<u8>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        if read_line(rd, line).await? == 0 {
            return Err(bad("connection closed in a chunked body"));
        }
        let text = String::from_utf8_lossy(line);
        let size = text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| bad(format!("bad chunk size {text:?}")))?;
        if size == 0 {
            // Trailers, up to the blank line.
            while read_line(rd, line).await? > 0 && !line.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(bad("body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        rd.read_exact(&mut body[start..]).await?;
        read_line(rd, line).await?;
    }
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

pub(crate) async fn write_response<W: AsyncWrite + Unpin>(
    wr: &mut W,
    resp: &Response,
    keep_alive: bool,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json;charset=utf-8\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        resp.status,
        reason(resp.status),
        resp.body.len(),
        if keep_alive { "keep-alive" } else { "close" },
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(resp.body.as_bytes());
    wr.write_all(&out).await?;
    wr.flush().await
}

/// The head of the never-ending stream response.
pub(crate) async fn write_stream_head<W: AsyncWrite + Unpin>(wr: &mut W) -> io::Result<()> {
    wr.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain;charset=utf-8\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n",
    )
    .await?;
    wr.flush().await
}

/// Writes `data` as one chunk and flushes.
pub(crate) async fn write_chunk<W: AsyncWrite + Unpin>(wr: &mut W, data: &[u8]) -> io::Result<()> {
    let mut out = format!("{:X}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    wr.write_all(&out).await?;
    wr.flush().await
}

/// Ends a chunked body cleanly.
pub(crate) async fn write_last_chunk<W: AsyncWrite + Unpin>(wr: &mut W) -> io::Result<()> {
    wr.write_all(b"0\r\n\r\n").await?;
    wr.flush().await
}
