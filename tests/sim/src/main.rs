//! `huiliu-sim`: runs the four platform simulators as one process, for `huiliu demo`.
//!
//! `huiliu-sim demo --gateway http://127.0.0.1:8080` starts a Taobao, a Douyin, a JD and a
//! WeChat Shop (微信小店) simulator on free loopback ports, prints ONE line of JSON to stdout describing the shops the
//! gateway must configure (`{"shops":[{"id","platform","name","settings":{…}}]}`), waits for the
//! gateway's `/healthz`, then delivers realistic buyer traffic (the built-in corpus) at `--rate`
//! messages per second, with an order or refund event now and then. It stops when the gateway
//! has been unreachable for 30 s, after `--count` messages, or when killed.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use huiliu_sim::corpus::Corpus;
use huiliu_sim::douyin::DouyinSim;
use huiliu_sim::jd::JdSim;
use huiliu_sim::taobao::TaobaoSim;
use huiliu_sim::wechat_shop::WechatShopSim;
use huiliu_sim::{BuyerChat, Faults, SimConfig, TradeEvent, TradeKind, now_ms};
use serde_json::json;

#[derive(Parser)]
#[command(name = "huiliu-sim", about = "Platform simulators for the Huiliu demo and tests")]
enum Cli {
    /// Start the four simulators and send demo traffic to a gateway.
    Demo {
        /// The gateway's base URL.
        #[arg(long)]
        gateway: String,
        /// Buyer messages per second (all platforms together).
        #[arg(long, default_value_t = 0.5)]
        rate: f64,
        /// Stop after this many messages (0: run until killed).
        #[arg(long, default_value_t = 0)]
        count: u64,
        /// Corpus seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let Cli::Demo { gateway, rate, count, seed } = Cli::parse();
    let gateway = gateway.trim_end_matches('/').to_owned();
    let faults = Arc::new(Faults::default());
    let taobao = TaobaoSim::start(SimConfig::sample("tb-demo-seller"), faults.clone()).await?;
    let douyin = DouyinSim::start(SimConfig::sample("7000001"), faults.clone()).await?;
    let jd = JdSim::start(SimConfig::sample("jd-demo-vendor"), faults.clone()).await?;
    let mut wx_config = SimConfig::sample("wxdemoshop");
    wx_config.app_key = "wx5f1e2d3c4b5a6978".into();
    let wechat = WechatShopSim::start(wx_config, faults.clone()).await?;
    let mut taobao_settings = taobao.shop_settings();
    taobao_settings.insert("sub_nick".into(), "tb-demo-seller:客服1".into());
    let shops = json!({"shops": [
        {"id": "tb-demo", "platform": "taobao", "name": "淘宝旗舰店（模拟）", "settings": taobao_settings},
        {"id": "dy-demo", "platform": "douyin", "name": "抖音小店（模拟）", "settings": douyin.shop_settings()},
        {"id": "jd-demo", "platform": "jd", "name": "京东自营店（模拟）", "settings": jd.shop_settings()},
        {"id": "wx-demo", "platform": "wechat-shop", "name": "微信小店（模拟）", "settings": wechat.shop_settings()},
    ]});
    let mut out = std::io::stdout().lock();
    writeln!(out, "{shops}")?;
    out.flush()?;
    drop(out);
    douyin.set_gateway(format!("{gateway}/hooks/douyin/dy-demo"));
    wechat.set_gateway(format!("{gateway}/hooks/wechat-shop/wx-demo"));

    let http = huiliu_sim::http_client();
    let healthy =
        || async { http.get(format!("{gateway}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) };
    let mut waited = 0;
    while !healthy().await {
        tokio::time::sleep(Duration::from_millis(200)).await;
        waited += 1;
        if waited > 300 {
            anyhow::bail!("the gateway at {gateway} did not become healthy");
        }
    }

    let mut corpus = Corpus::new(seed);
    let period = Duration::from_secs_f64(1.0 / rate.max(0.01));
    let mut ticker = tokio::time::interval(period);
    let mut unreachable_since: Option<std::time::Instant> = None;
    let mut sent: u64 = 0;
    while count == 0 || sent < count {
        ticker.tick().await;
        if !healthy().await {
            let since = *unreachable_since.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() > Duration::from_secs(30) {
                eprintln!("huiliu-sim: the gateway is gone; stopping");
                return Ok(());
            }
            continue;
        }
        unreachable_since = None;
        let m = corpus.message();
        sent += 1;
        let platform = sent % 4;
        let buyer_id = match platform {
            0 => format!("AAH{:06}", m.buyer),
            1 => format!("dy_open_{:06}", m.buyer),
            2 => format!("jd_open_{:06}", m.buyer),
            _ => format!("o7eep4jVQelr2eyoDSmE1{:06}", m.buyer),
        };
        // WeChat Shop message ids are numbers (beyond 2^53); the others take any text.
        let msg_id = if platform == 3 { format!("38937204492{sent:08}") } else { format!("demo-{seed}-{sent}") };
        let mut chat = BuyerChat::text(&msg_id, &buyer_id, &m.text, now_ms());
        chat.nick = m.nick.clone();
        chat.vip_level = m.vip_level;
        chat.fans_level = m.fans_level;
        // Now and then the buyer's order moves too.
        let trade = sent.is_multiple_of(7).then(|| TradeEvent {
            event_id: format!("demo-trade-{seed}-{sent}"),
            kind: if m.kind == "aftersales" { TradeKind::RefundRequested } else { TradeKind::OrderPaid },
            buyer_id: buyer_id.clone(),
            order_id: format!("4{:018}", sent),
            refund_id: Some(format!("R{sent:08}")),
            amount_fen: 19_900,
            at_ms: now_ms(),
        });
        let (t, d, j, w) = (taobao.clone(), douyin.clone(), jd.clone(), wechat.clone());
        tokio::spawn(async move {
            let delivery = match platform {
                0 => t.deliver_chat(&chat).await,
                1 => d.deliver_chat(&chat).await,
                2 => j.deliver_chat(&chat).await,
                _ => w.deliver_chat(&chat).await,
            };
            if !delivery.acked {
                eprintln!("huiliu-sim: message {} not acknowledged: {}", chat.msg_id, delivery.detail);
            }
            if let Some(trade) = trade {
                let _ = match platform {
                    0 => t.deliver_trade(&trade).await,
                    1 => d.deliver_trade(&trade).await,
                    2 => j.deliver_trade(&trade).await,
                    _ => w.deliver_trade(&trade).await,
                };
            }
        });
    }
    // Let the last deliveries finish.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}
