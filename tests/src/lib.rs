//! Support for Huiliu's end-to-end tests: build the real artifacts, run the real daemon.
//!
//! `cargo test` does not produce `cdylib` files, and the daemon must run as its own process
//! (so it can be killed), so the tests build what they need with a nested `cargo build` into
//! their own target directory (`target/e2e`), once per test process; later calls are no-ops
//! for cargo. A separate directory keeps the nested build clear of the outer cargo's lock.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

/// The packages the tests load or run.
const PACKAGES: &[&str] = &[
    "huiliu-gateway",
    "huiliu-taobao",
    "huiliu-douyin",
    "huiliu-jd",
    "huiliu-wechat-shop",
    "fixture-panic-init",
    "fixture-panic-decode",
    "fixture-abi-mismatch",
    "fixture-no-symbol",
];

/// Built artifacts.
#[derive(Debug)]
pub struct Artifacts {
    /// The directory holding the `huiliu` binary and every plugin library.
    pub dir: PathBuf,
}

impl Artifacts {
    /// The daemon binary.
    pub fn huiliu(&self) -> PathBuf {
        self.dir.join(format!("huiliu{}", std::env::consts::EXE_SUFFIX))
    }

    /// The library file of package `name` (`huiliu-taobao`, `fixture-no-symbol`).
    pub fn library(&self, package: &str) -> PathBuf {
        let stem = package.replace('-', "_");
        self.dir.join(format!("{}{stem}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX))
    }

    /// A fresh plugins directory holding copies of the given packages' libraries.
    pub fn plugins_dir(&self, packages: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for p in packages {
            let src = self.library(p);
            let dst = dir.path().join(src.file_name().expect("library file name"));
            std::fs::copy(&src, &dst).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
        }
        dir
    }
}

/// Builds (once per process) and returns the artifacts (debug profile).
pub fn artifacts() -> &'static Artifacts {
    static BUILT: OnceLock<Artifacts> = OnceLock::new();
    BUILT.get_or_init(|| build(false))
}

/// Builds (once per process) and returns the artifacts with the release profile, for benchmarks.
pub fn release_artifacts() -> &'static Artifacts {
    static BUILT: OnceLock<Artifacts> = OnceLock::new();
    BUILT.get_or_init(|| build(true))
}

fn build(release: bool) -> Artifacts {
    {
        let root = workspace_root();
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
        let target = if target.is_absolute() { target } else { root.join(target) }.join("e2e");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&root).arg("build").arg("--target-dir").arg(&target);
        if release {
            cmd.arg("--release");
        }
        for p in PACKAGES {
            cmd.arg("-p").arg(p);
        }
        let started = Instant::now();
        let out = cmd.output().expect("run cargo build for the e2e artifacts");
        assert!(out.status.success(), "building the e2e artifacts failed:\n{}", String::from_utf8_lossy(&out.stderr));
        if started.elapsed() > Duration::from_secs(5) {
            eprintln!("built e2e artifacts in {:.1?}", started.elapsed());
        }
        Artifacts { dir: target.join(if release { "release" } else { "debug" }) }
    }
}

/// A running `huiliu` process, killed when dropped.
#[derive(Debug)]
pub struct Daemon {
    pub child: Child,
    pub addr: String,
    pub config_dir: tempfile::TempDir,
    pub log: PathBuf,
    /// The `huiliu` binary it runs (debug for tests, release for benchmarks).
    pub bin: PathBuf,
    /// `RUST_LOG` for the daemon.
    pub log_level: String,
}

/// How to start a daemon: [`Daemon::launch`].
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    /// The `huiliu` binary (default: the debug build of [`artifacts`]).
    pub bin: Option<PathBuf>,
    pub plugins_dir: &'a Path,
    pub shops_toml: &'a str,
    /// Extra `huiliu.toml` sections.
    pub extra_toml: &'a str,
    /// Further files of the config directory (`routing.toml`, `users.toml`), written before start.
    pub files: Vec<(&'a str, String)>,
    /// `RUST_LOG` (default `info`, as shipped).
    pub log_level: &'a str,
    /// The store (default: `sqlite://huiliu.db` in the config directory).
    pub store_url: Option<String>,
}

impl<'a> Launch<'a> {
    /// The debug daemon with `plugins_dir` and `shops_toml`.
    pub fn new(plugins_dir: &'a Path, shops_toml: &'a str) -> Launch<'a> {
        Launch {
            bin: None,
            plugins_dir,
            shops_toml,
            extra_toml: "",
            files: Vec::new(),
            log_level: "info",
            store_url: None,
        }
    }
}

impl Daemon {
    /// Writes `huiliu.toml` (a free loopback port, `plugins_dir`, a SQLite file in the config
    /// directory, API token [`API_TOKEN`]) and `shops.toml` into a fresh config directory,
    /// starts `huiliu serve` and waits for `/healthz`.
    pub fn start(plugins_dir: &Path, shops_toml: &str) -> Daemon {
        Self::start_with(plugins_dir, shops_toml, "")
    }

    /// [`Daemon::start`] with extra `huiliu.toml` text appended (extra sections only).
    pub fn start_with(plugins_dir: &Path, shops_toml: &str, extra_toml: &str) -> Daemon {
        Self::launch(Launch { extra_toml, ..Launch::new(plugins_dir, shops_toml) })
    }

    /// Starts a daemon as `launch` says and waits for `/healthz`.
    pub fn launch(launch: Launch<'_>) -> Daemon {
        let Launch { bin, plugins_dir, shops_toml, extra_toml, files, log_level, store_url } = launch;
        let store_url = store_url.unwrap_or_else(|| "sqlite://huiliu.db".to_owned());
        let bin = bin.unwrap_or_else(|| artifacts().huiliu());
        let config_dir = tempfile::tempdir().expect("temp dir");
        let addr = format!("127.0.0.1:{}", free_port());
        std::fs::write(
            config_dir.path().join("huiliu.toml"),
            format!(
                "[server]\nlisten = \"{addr}\"\n[plugins]\ndir = \"{}\"\n[store]\nurl = \"{store_url}\"\n[api]\nadmin_token = \"{API_TOKEN}\"\n{extra_toml}",
                plugins_dir.display()
            ),
        )
        .expect("write huiliu.toml");
        std::fs::write(config_dir.path().join("shops.toml"), shops_toml).expect("write shops.toml");
        for (name, text) in files {
            std::fs::write(config_dir.path().join(name), text).unwrap_or_else(|e| panic!("write {name}: {e}"));
        }
        let log = config_dir.path().join("huiliu.log");
        let log_level = log_level.to_owned();
        let child = spawn_serve(&bin, config_dir.path(), &log, &log_level);
        let mut daemon = Daemon { child, addr, config_dir, log, bin, log_level };
        daemon.wait_healthy();
        let _ = daemon.is_running();
        daemon
    }

    /// Kills the daemon with SIGKILL (no shutdown path runs) and waits for it to die.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the daemon again on the same config, store and port.
    pub fn restart(&mut self) {
        self.kill9();
        self.child = spawn_serve(&self.bin, self.config_dir.path(), &self.log, &self.log_level);
        self.wait_healthy();
    }

    /// A JSON API call with the operator token; returns (status, JSON body).
    pub fn api(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> (u16, serde_json::Value) {
        let auth = format!("Bearer {API_TOKEN}");
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let (status, out) =
            self.request(method, path, &[("authorization", &auth), ("content-type", "application/json")], &bytes);
        (status, serde_json::from_slice(&out).unwrap_or(serde_json::Value::Null))
    }

    /// Every session (up to 500), as `GET /api/v1/sessions` lists them.
    pub fn sessions(&self) -> Vec<serde_json::Value> {
        let (status, body) = self.api("GET", "/api/v1/sessions?limit=500", None);
        assert_eq!(status, 200, "{body}");
        body["sessions"].as_array().cloned().unwrap_or_default()
    }

    /// The messages of session `id`.
    pub fn session_messages(&self, id: i64) -> Vec<serde_json::Value> {
        self.api("GET", &format!("/api/v1/sessions/{id}"), None).1["messages"].as_array().cloned().unwrap_or_default()
    }

    /// The platform ids of every stored buyer message, once per stored copy (so a message
    /// stored twice shows twice).
    pub fn stored_inbound_ids(&self) -> Vec<String> {
        self.sessions()
            .iter()
            .flat_map(|s| self.session_messages(s["id"].as_i64().unwrap_or(0)))
            .filter(|m| m["direction"] == "in")
            .map(|m| m["platform_msg_id"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    /// The value of the first `/metrics` line starting with `line_start` (0 when absent).
    pub fn metric(&self, line_start: &str) -> f64 {
        let (_, body) = self.request("GET", "/metrics", &[], b"");
        String::from_utf8_lossy(&body)
            .lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    }

    /// Polls `f` every 50 ms until it returns `Some`, or panics after `secs` with the log.
    pub fn wait_for<T>(&self, what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; daemon log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok((200, _)) = http(&self.addr, "GET", "/healthz", &[], b"") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("huiliu did not become healthy; log:\n{}", self.log_text());
    }

    /// Everything the daemon logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A request to the daemon.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>) {
        http(&self.addr, method, path, headers, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `[[shop]]` entry of `shops.toml` with its `[shop.settings]` (a simulator's `shop_settings()`).
pub fn shop_toml(id: &str, platform: &str, settings: &std::collections::BTreeMap<String, String>) -> String {
    let mut s = format!("[[shop]]\nid = \"{id}\"\nplatform = \"{platform}\"\n[shop.settings]\n");
    for (k, v) in settings {
        s.push_str(&format!("{k} = {}\n", serde_json::Value::String(v.clone())));
    }
    s
}

/// The tokio runtime the end-to-end tests drive simulators on: two workers, like the machine.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

/// The operator token every test daemon is configured with.
pub const API_TOKEN: &str = "e2e-operator-token";

fn spawn_serve(bin: &Path, config_dir: &Path, log: &Path, log_level: &str) -> Child {
    let log_file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
    Command::new(bin)
        .args(["serve", "--config"])
        .arg(config_dir)
        .env("RUST_LOG", log_level)
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("start huiliu")
}

/// Runs one SQL statement against the PostgreSQL database at `url` with `psql`; the rows,
/// `|`-separated (the cluster tests and the load bench's cluster phase read the store this way).
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql").arg(url).args(["-v", "ON_ERROR_STOP=1", "-tAc", sql]).output().expect("psql");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// A minimal blocking HTTP/1.1 client (one request per connection), enough to probe the
/// daemon without pulling an HTTP client into every test.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end in response"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    let mut body = raw[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}
pub mod load;
pub mod proxy;
