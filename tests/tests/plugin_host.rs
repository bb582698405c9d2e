//! The plugin host, exercised through the real `huiliu` binary and real plugin libraries.

use std::process::Command;

use huiliu_e2e::{Daemon, artifacts};

const BUNDLED: &[&str] = &["huiliu-taobao", "huiliu-douyin", "huiliu-jd", "huiliu-wechat-shop"];
const BROKEN: &[&str] = &["fixture-panic-init", "fixture-abi-mismatch", "fixture-no-symbol"];

/// A plugins dir with the bundled plugins, every broken fixture and a text file named `.so`.
fn mixed_plugins_dir() -> tempfile::TempDir {
    let all: Vec<&str> = BUNDLED.iter().chain(BROKEN).copied().collect();
    let dir = artifacts().plugins_dir(&all);
    std::fs::write(dir.path().join("libnotes.so"), "this is not a library\n").unwrap();
    std::fs::write(dir.path().join("README.txt"), "ignored: not named like a library\n").unwrap();
    dir
}

fn config_dir(plugins: &std::path::Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("huiliu.toml"), format!("[plugins]\ndir = \"{}\"\n", plugins.display())).unwrap();
    dir
}

#[test]
fn plugins_list_shows_loaded_plugins_and_each_rejection_with_its_reason() {
    let plugins = mixed_plugins_dir();
    let config = config_dir(plugins.path());
    let out =
        Command::new(artifacts().huiliu()).args(["plugins", "list", "--config"]).arg(config.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));

    for (id, caps) in [("taobao", "web_socket"), ("douyin", "push"), ("jd", "stream"), ("wechat-shop", "push")] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("no line for {id}:\n{stdout}"));
        assert!(line.contains(&format!("platform={id}")), "{line}");
        assert!(line.contains("abi=1"), "{line}");
        assert!(line.contains(caps), "{line}");
        assert!(line.contains("version=0.1.0"), "{line}");
        assert!(line.contains("path="), "{line}");
    }
    let rejected = |file: &str, reason: &str| {
        assert!(
            stdout.lines().any(|l| l.starts_with("REJECTED") && l.contains(file) && l.contains(reason)),
            "expected {file} rejected with `{reason}`:\n{stdout}"
        )
    };
    rejected("libnotes.so", "not a shared library");
    rejected("libfixture_no_symbol.so", "no `huiliu_connector_entry` symbol");
    rejected("libfixture_abi_mismatch.so", "built for plugin ABI version 999, this gateway speaks version 1");
    rejected("libfixture_panic_init.so", "init panicked: plugin panicked: fixture init exploded");
    assert!(!stdout.contains("README.txt"), "{stdout}");
    // Exactly one line per library file: 4 loaded + 4 rejected.
    assert_eq!(stdout.lines().filter(|l| l.starts_with("REJECTED")).count(), 4, "{stdout}");
}

#[test]
fn daemon_serves_with_broken_plugins_beside_good_ones() {
    let plugins = mixed_plugins_dir();
    let daemon = Daemon::start(plugins.path(), "");
    let (status, body) = daemon.request("GET", "/readyz", &[], b"");
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{body}");
    for id in ["taobao", "douyin", "jd", "wechat-shop"] {
        assert!(body.contains(&format!("\"{id}\"")), "{body}");
    }
    let (_, metrics) = daemon.request("GET", "/metrics", &[], b"");
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(metrics.contains("huiliu_plugins_loaded 4"), "{metrics}");
    assert!(metrics.contains("huiliu_plugins_rejected 4"), "{metrics}");
    let log = daemon.log_text();
    assert!(log.contains("plugin rejected") && log.contains("fixture init exploded"), "{log}");
}

#[test]
fn a_plugin_panic_while_decoding_fails_that_push_only() {
    let plugins = artifacts().plugins_dir(&["fixture-panic-decode", "huiliu-douyin"]);
    let daemon = Daemon::start(plugins.path(), "[[shop]]\nid = \"fx-1\"\nplatform = \"fixture\"\n");
    let (status, body) = daemon.request("POST", "/hooks/fixture/fx-1", &[], b"!explode");
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("plugin_panic") && body.contains("panic-decode") && body.contains("fixture decoder exploded"),
        "{body}"
    );
    // The daemon keeps serving: health, and the same plugin on a good push (stored, acked).
    assert_eq!(daemon.request("GET", "/healthz", &[], b"").0, 200);
    let (status, body) = daemon.request("POST", "/hooks/fixture/fx-1", &[], "你好".as_bytes());
    assert_eq!((status, String::from_utf8_lossy(&body).as_ref()), (200, "ok"));
    let (_, sessions) = daemon.api("GET", "/api/v1/sessions", None);
    assert_eq!(sessions["sessions"].as_array().map(Vec::len), Some(1), "{sessions}");
    let (_, metrics) = daemon.request("GET", "/metrics", &[], b"");
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(metrics.contains(r#"huiliu_plugin_panics_total{plugin="panic-decode",op="decode_push"} 1"#), "{metrics}");
    let log = daemon.log_text();
    assert!(log.contains("plugin panicked") && log.contains("panic-decode"), "{log}");
}

/// The example plugin in `sdk/examples/echo-connector` is its own workspace depending on the SDK
/// by path only: build it the way an outside developer would, then load it into the daemon.
#[test]
fn the_example_plugin_builds_out_of_tree_and_loads_into_the_daemon() {
    let root = huiliu_e2e::workspace_root();
    let target = root.join("target").join("e2e-echo");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root.join("sdk/examples/echo-connector"))
        .args(["build", "--target-dir"])
        .arg(&target)
        .output()
        .unwrap();
    assert!(out.status.success(), "out-of-tree build failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let lib = target.join("debug").join(format!(
        "{}huiliu_echo{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(&lib, plugins.path().join(lib.file_name().unwrap())).unwrap();

    let daemon = Daemon::start(
        plugins.path(),
        "[[shop]]\nid = \"echo-1\"\nplatform = \"echo\"\n[shop.settings]\napp_secret = \"s3cret\"\n",
    );
    let body = r#"{"id":"e-1","buyer":"b-1","text":"hello from outside"}"#;
    let sign = huiliu_sdk::crypto::hmac_sha256_hex(b"s3cret", &[body.as_bytes()], huiliu_sdk::crypto::Case::Lower);
    let (status, answer) = daemon.request("POST", "/hooks/echo/echo-1", &[("x-echo-sign", &sign)], body.as_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let (_, sessions) = daemon.api("GET", "/api/v1/sessions?shop=echo-1", None);
    assert_eq!(sessions["sessions"].as_array().map(Vec::len), Some(1), "{sessions}");
    let (status, _) = daemon.request("POST", "/hooks/echo/echo-1", &[("x-echo-sign", "forged")], body.as_bytes());
    assert_eq!(status, 401);
}

/// `huiliu check` refuses a shop that could receive but never reply: the WeChat Shop plugin
/// declares `appsecret` required to send (ConfigKey::required_to_send).
#[test]
fn check_reports_a_shop_that_cannot_send() {
    let plugins = artifacts().plugins_dir(&["huiliu-wechat-shop"]);
    let config = config_dir(plugins.path());
    let shop = "[[shop]]\nid = \"wx-1\"\nplatform = \"wechat-shop\"\n[shop.settings]\nappid = \"wx5f1e2d3c4b5a6978\"\ntoken = \"AAAAA\"\n";
    std::fs::write(config.path().join("shops.toml"), shop).unwrap();
    let check = || Command::new(artifacts().huiliu()).args(["check", "--config"]).arg(config.path()).output().unwrap();
    let out = check();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a shop without appsecret passed:\n{stderr}");
    assert!(stderr.contains("shop[0].settings.appsecret: required to send replies"), "{stderr}");
    std::fs::write(config.path().join("shops.toml"), format!("{shop}appsecret = \"s3cret\"\n")).unwrap();
    let out = check();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
