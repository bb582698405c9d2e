//! `huiliu`: the command line of the gateway.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use huiliu_domain::ConfigError;
use huiliu_gateway::config::{self, GatewayConfig};
use huiliu_gateway::demo::DemoOptions;
use huiliu_gateway::plugins::PluginHost;
use huiliu_gateway::{Gateway, telemetry};

/// glibc's malloc (arenas, `malloc_consolidate`) took about 15 % of the daemon's CPU samples at
/// flat-out intake (docs/performance.md); mimalloc's thread-local free lists cost a fraction.
/// Plugins keep their own allocator: each cdylib links its own, and buffers crossing the ABI are
/// freed by the side that allocated them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Huiliu (汇流): one customer-service desk for every storefront.
#[derive(Parser)]
#[command(name = "huiliu", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ConfigArg {
    /// Configuration directory (huiliu.toml, shops.toml, …).
    #[arg(long, short, env = "HUILIU_CONFIG", default_value = "config")]
    config: PathBuf,
}

#[derive(clap::Args)]
struct MaskArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// After each masked line, list every span considered — masked, kept (hotlines) or
    /// rejected (order numbers, codes, short numbers) — with its kind, the rule that decided it
    /// and the words before it. Shows the original characters: for your own test input.
    #[arg(long)]
    explain: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve(ConfigArg),
    /// Validate the configuration and report every error at once (exit 1 if any).
    Check(ConfigArg),
    /// Run a demo: simulated Taobao, Douyin, JD and WeChat Shop storefronts send buyer traffic to a gateway on
    /// the embedded defaults, a demo agent answers, and a live log shows the flow.
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Keep the demo database here (default: a temp directory removed at exit).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Buyer messages per second.
        #[arg(long, default_value_t = 0.5)]
        rate: f64,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long, default_value_t = 0)]
        duration: u64,
    },
    /// Write a consistent copy of the database while the gateway runs (SQLite; PostgreSQL: pg_dump).
    Backup {
        #[command(flatten)]
        config: ConfigArg,
        /// The backup file to write (must not exist).
        #[arg(long)]
        to: PathBuf,
    },
    /// Put a backup in place of the database; the gateway must be stopped. The current database
    /// is kept beside it.
    Restore {
        #[command(flatten)]
        config: ConfigArg,
        /// The backup file to restore.
        #[arg(long)]
        from: PathBuf,
    },
    /// Apply pending schema migrations (the gateway also does at start), or list them.
    Migrate {
        #[command(flatten)]
        config: ConfigArg,
        /// Only list what would run.
        #[arg(long)]
        dry_run: bool,
    },
    /// A person's rights: export or erase what is stored about one buyer (audited).
    Buyer {
        #[command(subcommand)]
        command: BuyerCommand,
    },
    /// The knowledge base (智能客服): try a question, import a 千牛 export.
    Faq {
        #[command(subcommand)]
        command: FaqCommand,
    },
    /// Mask personal data: reads messages from stdin, one per line, and prints each masked on
    /// its own line, with exactly the gateway's masking code and the configured filters.
    Mask(MaskArgs),
    /// Review the blacklist: list, propose, approve, reject, remove.
    Blacklist {
        #[command(subcommand)]
        command: BlacklistCommand,
    },
    /// Routing tools.
    Route {
        #[command(subcommand)]
        command: RouteCommand,
    },
    /// Several nodes: `huiliu cluster status --config DIR` lists nodes, leases, epochs and ages.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Inspect connector plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Print the OpenAPI 3.1 document of `/api/v1` (what a running daemon serves at
    /// `/api/v1/openapi.json`), for client generators and contract tests.
    Openapi,
    /// Workbench users (users.toml).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Reads a password from standard input (first line) and prints its Argon2id hash for
    /// `password_hash` in users.toml.
    Hash,
}

#[derive(clap::Args)]
struct ActorArg {
    /// Who is acting (written to the audit log).
    #[arg(long)]
    by: String,
    /// Their role: agent, lead or admin.
    #[arg(long, default_value = "agent")]
    role: String,
}

/// Whom a person's-rights command is about, and why.
#[derive(clap::Args)]
struct BuyerArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The platform (taobao, douyin, jd, wechat-shop).
    #[arg(long)]
    platform: String,
    /// The shop id.
    #[arg(long)]
    shop: String,
    /// The platform's open buyer id.
    #[arg(long)]
    buyer: String,
    /// Why (the person's request, a ticket); written to the audit log.
    #[arg(long)]
    reason: String,
    /// Who is acting (written to the audit log).
    #[arg(long, default_value = "cli")]
    by: String,
}

#[derive(Subcommand)]
enum BuyerCommand {
    /// Print everything stored about one buyer as JSON (个人信息保护法: the right to a copy).
    Export(BuyerArgs),
    /// Erase everything stored about one buyer (the right to deletion); dedupe keys stay.
    Erase(BuyerArgs),
}

#[derive(Subcommand)]
enum BlacklistCommand {
    /// List entries (optionally only one state: proposed, approved, rejected, removed, expired).
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        state: Option<String>,
    },
    /// Propose an entry.
    Propose {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        actor: ActorArg,
        #[arg(long)]
        platform: String,
        /// Only this shop (default: every shop of the platform).
        #[arg(long)]
        shop: Option<String>,
        /// The platform's open buyer id.
        #[arg(long)]
        buyer: String,
        /// flag, restrict or block.
        #[arg(long)]
        level: String,
        #[arg(long)]
        reason: String,
        /// Message ids showing the behaviour (repeatable).
        #[arg(long)]
        evidence: Vec<String>,
        /// Days until the entry expires.
        #[arg(long)]
        expires_days: Option<u32>,
    },
    /// Approve a proposal (lead or admin, not the proposer).
    Approve {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        actor: ActorArg,
        id: i64,
        #[arg(long)]
        note: Option<String>,
    },
    /// Reject a proposal (lead or admin).
    Reject {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        actor: ActorArg,
        id: i64,
        #[arg(long)]
        note: Option<String>,
    },
    /// Remove an entry (lead or admin).
    Remove {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        actor: ActorArg,
        id: i64,
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Subcommand)]
enum RouteCommand {
    /// Where would this message go, and why: a dry run of a sample event (JSON, see
    /// `SampleEvent`) against the routing configuration, with no side effects.
    Explain {
        #[command(flatten)]
        config: ConfigArg,
        /// The sample event file (JSON).
        #[arg(long)]
        event: PathBuf,
        /// The language of the explanation: `zh` (Chinese, the default) or `en`.
        #[arg(long, default_value = "zh", value_parser = parse_lang)]
        lang: huiliu_routing::Lang,
    },
}

fn parse_lang(s: &str) -> Result<huiliu_routing::Lang, String> {
    huiliu_routing::Lang::parse(s).ok_or_else(|| format!("`{s}`: expected zh or en"))
}

#[derive(Subcommand)]
enum FaqCommand {
    /// How the knowledge base (faq.toml) would answer a question: the best entries with their
    /// confidence and the words that matched. Exit 0 when the bot would answer, 1 when it
    /// would hand the buyer to an agent (2 when faq.toml is missing or has errors).
    Try {
        #[command(flatten)]
        config: ConfigArg,
        /// The buyer's question.
        question: String,
        /// The shop (its threshold and conditions apply).
        #[arg(long)]
        shop: Option<String>,
        /// The platform (taobao, douyin, jd, wechat-shop), for entries restricted to one.
        #[arg(long)]
        platform: Option<String>,
        /// The product the conversation is about (a product id), for per-product entries and
        /// `{product}` (its `[[product]]` name).
        #[arg(long)]
        product: Option<String>,
        /// The buyer's latest order state (unpaid, paid, shipped, delivered, refunding, …).
        #[arg(long)]
        state: Option<String>,
        /// Beijing time HH:MM for entries with hours (default: now).
        #[arg(long)]
        at: Option<String>,
        /// How many entries to show.
        #[arg(long, default_value_t = 3)]
        top: usize,
    },
    /// Print a 千牛 knowledge export (CSV: 问题, 相似问法, 答案) as [[entry]] tables to edit and
    /// paste into faq.toml (or list the file under `[knowledge] csv` to load it as it is).
    Import {
        /// The CSV file.
        file: PathBuf,
        /// The id prefix of the entries.
        #[arg(long, default_value = "qn")]
        prefix: String,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// The nodes seen, the leases with holder, epoch and age, from the shared database.
    Status(ConfigArg),
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// List loaded plugins and rejected files with the reason.
    List(ConfigArg),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(a) => serve(a),
        Command::Check(a) => check(a),
        Command::Plugins { command: PluginsCommand::List(a) } => plugins_list(a),
        Command::Cluster { command: ClusterCommand::Status(a) } => {
            ops_command(&a, |cfg| async move { huiliu_gateway::ops::cluster_status(&cfg).await })
        }
        Command::Mask(a) => mask(a),
        Command::Faq { command } => faq(command),
        Command::Backup { config, to } => {
            ops_command(&config, |cfg| async move { huiliu_gateway::ops::backup(&cfg, &to).await })
        }
        Command::Restore { config, from } => {
            ops_command(&config, |cfg| async move { huiliu_gateway::ops::restore(&cfg, &from).await })
        }
        Command::Buyer { command } => {
            let (a, erase) = match command {
                BuyerCommand::Export(a) => (a, false),
                BuyerCommand::Erase(a) => (a, true),
            };
            if huiliu_domain::text::is_blank(&a.reason) {
                eprintln!("error: --reason must say why (the person's request, a ticket)");
                return ExitCode::from(2);
            }
            let buyer = huiliu_store::BuyerRef { platform: a.platform, shop: a.shop, buyer_id: a.buyer };
            let (by, reason) = (a.by, a.reason);
            ops_command(&a.config, |cfg| async move {
                if erase {
                    huiliu_gateway::ops::erase_buyer(&cfg, &buyer, &by, &reason).await
                } else {
                    huiliu_gateway::ops::export_buyer(&cfg, &buyer, &by, &reason).await
                }
            })
        }
        Command::Migrate { config, dry_run } => {
            ops_command(&config, |cfg| async move { huiliu_gateway::ops::migrate(&cfg, dry_run).await })
        }
        Command::User { command: UserCommand::Hash } => user_hash(),
        Command::Openapi => {
            println!("{}", huiliu_gateway::api::openapi_document());
            ExitCode::SUCCESS
        }
        Command::Route { command: RouteCommand::Explain { config, event, lang } } => route_explain(config, event, lang),
        Command::Blacklist { command } => blacklist(command),
        Command::Demo { listen, data, rate, duration } => {
            demo(DemoOptions { listen, data_dir: data, rate, duration_secs: duration })
        }
    }
}

/// The async runtime, or the exit code after saying why it could not start.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        ExitCode::from(1)
    })
}

/// Runs `work` to completion: exit 0, or exit 1 after printing its error.
fn run_to_exit(work: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn print_errors(errors: &[ConfigError]) {
    for e in errors {
        eprintln!("error: {e}");
    }
    eprintln!("{} configuration error(s)", errors.len());
}

fn load_or_report(a: &ConfigArg) -> Result<GatewayConfig, ExitCode> {
    config::load(&a.config).map_err(|errors| {
        print_errors(&errors);
        ExitCode::from(1)
    })
}

/// Loads the configuration and runs one of the store operations, printing what it did.
fn ops_command<F, Fut>(a: &ConfigArg, work: F) -> ExitCode
where
    F: FnOnce(GatewayConfig) -> Fut,
    Fut: std::future::Future<Output = Result<String, String>>,
{
    let cfg = match load_or_report(a) {
        Ok(c) => c,
        Err(code) => return code,
    };
    run_to_exit(async move {
        let done = work(cfg).await?;
        println!("{done}");
        Ok(())
    })
}

fn serve(a: ConfigArg) -> ExitCode {
    let cfg = match load_or_report(&a) {
        Ok(c) => c,
        Err(code) => return code,
    };
    telemetry::init(&cfg.log);
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let addr = cfg.listen_addr();
        let gateway = match Gateway::start(cfg).await {
            Ok(g) => g,
            Err(e) => {
                tracing::error!("cannot start: {e}");
                return ExitCode::from(1);
            }
        };
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot listen on {addr}: {e}");
                return ExitCode::from(1);
            }
        };
        tracing::info!("huiliu listening on http://{}", listener.local_addr().unwrap_or(addr));
        gateway.spawn_background();
        // The peer's address reaches the handlers (the login limiter counts per address).
        let app = gateway.app().into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(huiliu_gateway::nodelay_listener(listener), app)
            .with_graceful_shutdown(shutdown_signal())
            .await;
        if let Some((leases, _)) = &gateway.cluster {
            // The other nodes take over at once instead of waiting the leases out.
            leases.release_all().await;
        }
        match served {
            Ok(()) => {
                tracing::info!("huiliu stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!("server error: {e}");
                ExitCode::from(1)
            }
        }
    })
}

fn demo(options: DemoOptions) -> ExitCode {
    telemetry::init(&huiliu_gateway::config::LogConfig { level: "warn".into(), ..Default::default() });
    run_to_exit(huiliu_gateway::demo::run(options))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn check(a: ConfigArg) -> ExitCode {
    // A broken section falls back to its defaults, so shops are still checked against the
    // plugins (from the default directory if `plugins.dir` itself is wrong).
    let (mut cfg, mut errors) = config::load_partial(&a.config, &|name| std::env::var(name).ok());
    if !cfg.plugins_dir().is_dir() {
        cfg.plugins = GatewayConfig::defaults(&a.config).plugins;
    }
    let host = PluginHost::load_dir(&cfg.plugins_dir());
    let shops_file = a.config.join(config::SHOPS_FILE).display().to_string();
    let mut shop_errors = Vec::new();
    for (i, shop) in cfg.shops.iter().enumerate() {
        for (key, message) in host.validate_shop(shop) {
            shop_errors.push(ConfigError { file: shops_file.clone(), key: format!("shop[{i}].{key}"), message });
        }
    }
    if shop_errors.is_empty() {
        // Last, let each connector judge its own settings (formats, enums).
        let metrics = Arc::new(huiliu_gateway::metrics::Metrics::new());
        for (i, shop) in cfg.shops.iter().enumerate() {
            if let Err(message) = host.instantiate(shop, shop.settings.clone(), metrics.clone()) {
                shop_errors.push(ConfigError { file: shops_file.clone(), key: format!("shop[{i}]"), message });
            }
        }
    }
    errors.extend(shop_errors);
    for r in &host.rejected {
        eprintln!("warning: plugin {} rejected: {}", r.path.display(), r.reason);
    }
    if errors.is_empty() {
        println!(
            "configuration OK: {} shop(s), {} plugin(s) from {}, {} workbench user(s), {} quick replies, {}",
            cfg.shops.len(),
            host.loaded.len(),
            cfg.plugins_dir().display(),
            cfg.users.len(),
            cfg.quick_replies.len(),
            match &cfg.knowledge {
                Some(k) => format!("{} knowledge-base entries", k.entry.len()),
                None => "no knowledge base".into(),
            }
        );
        if cfg.users.is_empty() {
            eprintln!("note: users.toml lists no users: nobody can log in to the workbench");
        }
        // The desk-dependent bot modes read routing: say what they see now, or that they cannot.
        let desk_shops: Vec<_> = cfg.knowledge.iter().flat_map(|k| &k.shop).filter(|s| s.bot.needs_desk()).collect();
        // long_wait estimates with the handle time learned from the store: read it (without
        // opening the store) to say which value the daemon would use now.
        let learned =
            if desk_shops.iter().any(|s| s.bot == huiliu_knowledge::BotMode::LongWait) && cfg.routing.is_some() {
                learned_handle_times(&cfg.store_url())
            } else {
                Ok(huiliu_routing::HandleTimes::default())
            };
        for shop in desk_shops {
            let mode = if shop.bot == huiliu_knowledge::BotMode::OffHours { "off_hours" } else { "long_wait" };
            let platform = cfg.shops.iter().find(|s| s.id == shop.id).map_or("", |s| s.platform.as_str());
            let none = huiliu_routing::HandleTimes::default();
            let outlook = cfg.routing.as_ref().and_then(|r| {
                huiliu_routing::outlook(
                    r,
                    None,
                    learned.as_ref().unwrap_or(&none),
                    platform,
                    &shop.id,
                    huiliu_domain::now_millis(),
                )
            });
            match (&cfg.routing, outlook) {
                (None, _) => eprintln!(
                    "note: faq.toml: shop `{}` has bot = \"{mode}\" but there is no routing.toml: its bot never answers first",
                    shop.id
                ),
                (Some(_), None) => eprintln!(
                    "note: faq.toml: shop `{}` has bot = \"{mode}\" but no routing rule or fallback group takes its conversations",
                    shop.id
                ),
                (Some(_), Some(o)) => {
                    println!(
                        "bot of shop `{}` ({mode}): its conversations go to group `{}`, {} now",
                        shop.id,
                        o.group,
                        if o.open { "open" } else { "closed" }
                    );
                    if shop.bot == huiliu_knowledge::BotMode::LongWait {
                        match &learned {
                            Ok(_) => {
                                println!("  expected wait estimated with a handle time of {}", o.handle.describe())
                            }
                            Err(e) => println!(
                                "  expected wait: the store cannot be read here ({e}); the daemon learns the handle time from it \
                                 (mean assignment-to-close over the last {} days, once {} conversations closed), else uses {}",
                                huiliu_routing::LEARN_WINDOW_DAYS,
                                huiliu_routing::LEARN_MIN_CLOSED,
                                o.handle.describe()
                            ),
                        }
                    }
                }
            }
        }
        println!("retention ([retention], swept hourly):");
        for line in cfg.retention.describe() {
            println!("  {line}");
        }
        ExitCode::SUCCESS
    } else {
        print_errors(&errors);
        ExitCode::from(1)
    }
}

/// The handle times the daemon would learn now from the store at `url` (none yet when the
/// database does not exist).
fn learned_handle_times(url: &str) -> Result<huiliu_routing::HandleTimes, String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let since = huiliu_domain::now_millis() - huiliu_routing::LEARN_WINDOW_DAYS * 86_400_000;
    let rows = runtime
        .block_on(huiliu_store::peek_closed_handling(url, since))
        .map_err(|e| huiliu_gateway::redact_url(&e.to_string()))?;
    let mut learned = huiliu_routing::HandleTimes::default();
    for g in rows.unwrap_or_default() {
        learned.groups.insert(g.group, huiliu_routing::ClosedSample::from_total_ms(g.closed, g.total_ms));
    }
    Ok(learned)
}

fn faq(command: FaqCommand) -> ExitCode {
    match command {
        FaqCommand::Try { config, question, shop, platform, product, state, at, top } => {
            let faq = match huiliu_knowledge::load(&config.config) {
                Ok(Some(f)) => f,
                Ok(None) => {
                    eprintln!("error: no {} in {}", huiliu_knowledge::FAQ_FILE, config.config.display());
                    return ExitCode::from(2);
                }
                Err(errors) => {
                    print_errors(&errors);
                    return ExitCode::from(2);
                }
            };
            let minute = match at.as_deref() {
                Some(hhmm) => match huiliu_knowledge::config::Hours::parse(&format!("{hhmm}-00:00")) {
                    Some(h) => h.from,
                    None => {
                        eprintln!("error: --at `{hhmm}` is not HH:MM");
                        return ExitCode::from(2);
                    }
                },
                None => huiliu_knowledge::beijing_minute(huiliu_domain::now_millis()),
            };
            let kb = huiliu_knowledge::KnowledgeBase::build(&faq);
            let ctx = huiliu_knowledge::Context {
                platform: platform.as_deref(),
                shop: shop.as_deref(),
                product: product.as_deref(),
                order_state: state.as_deref(),
                minute: Some(minute),
            };
            let found = kb.lookup(&question, &ctx, top.max(1));
            let threshold = kb.threshold(shop.as_deref());
            let terms: Vec<&str> = found.terms.iter().filter(|t| !t.starts_with('#')).map(String::as_str).collect();
            println!("words: {}", terms.join(" "));
            if found.matches.is_empty() {
                println!("no entry shares a word with the question");
            }
            for (i, m) in found.matches.iter().enumerate() {
                let Some(entry) = kb.entry(m.entry) else { continue };
                // Only the first entry has a confidence of its own (its lead over the others);
                // the others' scores are shown as they are.
                let confidence =
                    if i == 0 { format!("confidence {:.2} (", m.confidence) } else { "               (".to_string() };
                println!(
                    "{}. {:<24} {confidence}similarity {:.2}, semantic {:.2}, bm25 {:.2})  via 「{}」  matched: {}",
                    i + 1,
                    entry.id,
                    m.similarity,
                    m.semantic,
                    m.bm25,
                    m.question,
                    m.matched.join(" ")
                );
            }
            match kb.decide(&question, &ctx, &["complaint"]).0 {
                huiliu_knowledge::Decision::Answer(m) => {
                    let Some(entry) = kb.entry(m.entry) else { return ExitCode::from(2) };
                    println!("→ the bot answers (confidence {:.2} >= threshold {threshold:.2}):", m.confidence);
                    let name = product.as_deref().and_then(|id| kb.config().product_name(id));
                    let vars = huiliu_knowledge::Vars { product: name, ..huiliu_knowledge::Vars::default() };
                    println!("  {}", huiliu_knowledge::render(&entry.answer, &vars));
                    // Its attachments as they would follow the text (no order is known here: an
                    // order card is left out, as in a conversation without one).
                    let subject =
                        huiliu_knowledge::Subject { product: product.as_deref().map(|id| (id, None)), order: None };
                    for a in kb.config().attachments(entry, &subject) {
                        match a {
                            huiliu_knowledge::Attachment::Image { url } => println!("  + [图片] {url}"),
                            huiliu_knowledge::Attachment::Product { id, title } => {
                                println!("  + [商品] {id}{}", title.map(|t| format!(" {t}")).unwrap_or_default())
                            }
                            huiliu_knowledge::Attachment::Order { id } => println!("  + [订单] {id}"),
                        }
                    }
                    ExitCode::SUCCESS
                }
                huiliu_knowledge::Decision::HandOver(huiliu_knowledge::HandOver::Category(c)) => {
                    println!(
                        "→ hand over to an agent: the message matches a {c} entry (category {c} is never answered by the bot)"
                    );
                    ExitCode::from(1)
                }
                huiliu_knowledge::Decision::HandOver(huiliu_knowledge::HandOver::LowConfidence) => {
                    println!("→ hand over to an agent: no entry reaches the threshold {threshold:.2}");
                    ExitCode::from(1)
                }
            }
        }
        FaqCommand::Import { file, prefix } => {
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: {}: {e}", file.display());
                    return ExitCode::from(1);
                }
            };
            match huiliu_knowledge::import::parse_csv(&text, &file.display().to_string(), &prefix) {
                Ok(entries) => {
                    print!("{}", huiliu_knowledge::import::to_toml(&entries));
                    eprintln!("{} entries", entries.len());
                    ExitCode::SUCCESS
                }
                Err(errors) => {
                    print_errors(&errors);
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn route_explain(a: ConfigArg, event: PathBuf, lang: huiliu_routing::Lang) -> ExitCode {
    let cfg = match load_or_report(&a) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(routing) = cfg.routing else {
        eprintln!("error: {} has no {}", a.config.display(), huiliu_routing::ROUTING_FILE);
        return ExitCode::from(1);
    };
    let text = match std::fs::read_to_string(&event) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", event.display());
            return ExitCode::from(1);
        }
    };
    let mut sample: huiliu_routing::SampleEvent = match serde_json::from_str(&text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}: {e}", event.display());
            return ExitCode::from(1);
        }
    };
    let now = huiliu_domain::now_millis();
    if sample.at.is_none() {
        sample.at = Some(huiliu_routing::EventTime::Millis(now));
    }
    let state = match huiliu_routing::Engine::new(routing.clone(), now) {
        Ok(r) => r.state(),
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            return ExitCode::from(1);
        }
    };
    let mut names = huiliu_routing::Names::with_platforms();
    names.shops = cfg.shops.iter().map(|s| (s.id.clone(), s.name.clone())).collect();
    print!("{}", huiliu_routing::explain_in(&routing, &state, &sample, lang, &names));
    ExitCode::SUCCESS
}

fn mask(args: MaskArgs) -> ExitCode {
    use std::io::{BufRead, Write};
    let a = &args.config;
    let cfg = match load_or_report(a) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let filters = match huiliu_privacy::Filters::new(&cfg.filters) {
        Ok(f) => f,
        Err(errors) => {
            for (key, message) in errors {
                eprintln!("error: {key}: {message}");
            }
            return ExitCode::from(1);
        }
    };
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in stdin.lock().lines() {
        let Ok(line) = line else {
            eprintln!("error: stdin is not UTF-8 text");
            return ExitCode::from(1);
        };
        let written = if args.explain {
            write_explained(&mut out, &filters.masker.explain(&line))
        } else {
            writeln!(out, "{}", filters.masker.mask(&line).text)
        };
        if written.is_err() {
            return ExitCode::SUCCESS; // stdout closed (e.g. piped to head)
        }
    }
    let _ = out.flush();
    ExitCode::SUCCESS
}

/// `huiliu mask --explain`: the masked line, then one indented line per span considered.
fn write_explained(out: &mut impl std::io::Write, e: &huiliu_privacy::mask::Explanation) -> std::io::Result<()> {
    writeln!(out, "{}", e.masked.text)?;
    if e.spans.is_empty() {
        return writeln!(out, "  (nothing considered: no digit run of 5 or more, no marker word)");
    }
    for s in &e.spans {
        let (verdict, result) = match &s.masked {
            Some(m) => ("masked", format!(" -> {m}")),
            None if s.kind == "number" => ("rejected", String::new()),
            None => ("kept", String::new()),
        };
        writeln!(out, "  {verdict:<8} {:<14} {:?}{result}  [{}..{}]", s.kind, s.text, s.range.start, s.range.end)?;
        writeln!(out, "           rule: {}; {}", s.rule, s.context)?;
    }
    Ok(())
}

fn blacklist(command: BlacklistCommand) -> ExitCode {
    use huiliu_domain::{Actor, Role};
    use huiliu_gateway::services::blacklist::Blacklist;
    use huiliu_store::blacklist::{BlacklistLevel, EntryState, Proposal};
    use huiliu_store::{Store, StoreOptions};

    let config = match &command {
        BlacklistCommand::List { config, .. }
        | BlacklistCommand::Propose { config, .. }
        | BlacklistCommand::Approve { config, .. }
        | BlacklistCommand::Reject { config, .. }
        | BlacklistCommand::Remove { config, .. } => config,
    };
    let cfg = match load_or_report(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let actor = |a: &ActorArg| -> Result<Actor, String> {
        let role = Role::parse(&a.role).ok_or_else(|| format!("unknown role `{}` (agent, lead, admin)", a.role))?;
        Ok(Actor::new(a.by.clone(), role))
    };
    let run = async move {
        let store = Store::open(&cfg.store_url(), StoreOptions::default()).await.map_err(|e| e.to_string())?;
        let bl = Blacklist::load(store).await.map_err(|e| e.to_string())?;
        let now = huiliu_domain::now_millis();
        let show = |e: &huiliu_store::blacklist::BlacklistEntry| {
            format!(
                "#{:<5} {:<9} {:<8} {}/{}/{}  by {}  reason: {}  evidence: {}",
                e.id,
                e.state.as_str(),
                e.level.as_str(),
                e.platform,
                e.shop.as_deref().unwrap_or("*"),
                e.buyer_id,
                e.proposed_by,
                e.reason,
                e.evidence.join(",")
            )
        };
        match command {
            BlacklistCommand::List { state, .. } => {
                let state = match state.as_deref() {
                    None => None,
                    Some(s) => Some(EntryState::parse(s).ok_or_else(|| format!("unknown state `{s}`"))?),
                };
                for e in bl.list(state).await.map_err(|e| e.to_string())? {
                    println!("{}", show(&e));
                }
            }
            BlacklistCommand::Propose {
                actor: a,
                platform,
                shop,
                buyer,
                level,
                reason,
                evidence,
                expires_days,
                ..
            } => {
                let level = BlacklistLevel::parse(&level)
                    .ok_or_else(|| format!("unknown level `{level}` (flag, restrict, block)"))?;
                let expires_at = expires_days.map(|d| now + i64::from(d) * 86_400_000);
                let p = Proposal { platform, shop, buyer_id: buyer, level, reason, evidence, expires_at };
                let id = bl.propose(&actor(&a)?, &p, now).await.map_err(|e| e.to_string())?;
                println!("proposed #{id}; a lead or admin must approve it before it acts");
            }
            BlacklistCommand::Approve { actor: a, id, note, .. } => {
                println!(
                    "{}",
                    show(&bl.approve(&actor(&a)?, id, note.as_deref(), now).await.map_err(|e| e.to_string())?)
                );
            }
            BlacklistCommand::Reject { actor: a, id, note, .. } => {
                println!(
                    "{}",
                    show(&bl.reject(&actor(&a)?, id, note.as_deref(), now).await.map_err(|e| e.to_string())?)
                );
            }
            BlacklistCommand::Remove { actor: a, id, note, .. } => {
                println!(
                    "{}",
                    show(&bl.remove(&actor(&a)?, id, note.as_deref(), now).await.map_err(|e| e.to_string())?)
                );
            }
        }
        Ok::<(), String>(())
    };
    run_to_exit(run)
}

fn plugins_list(a: ConfigArg) -> ExitCode {
    let cfg = match load_or_report(&a) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let dir = cfg.plugins_dir();
    let host = PluginHost::load_dir(&dir);
    println!("plugins directory: {}", dir.display());
    if host.loaded.is_empty() {
        println!("no plugins loaded");
    }
    for l in &host.loaded {
        let caps: Vec<&str> = l.manifest.capabilities.iter().map(|c| c.as_str()).collect();
        println!(
            "{:<14} platform={:<8} version={:<8} abi={} sdk={} capabilities={} path={}",
            l.manifest.id,
            l.manifest.platform,
            l.manifest.version,
            l.plugin.abi_version(),
            l.plugin.sdk_version(),
            caps.join(","),
            l.path.display()
        );
    }
    for r in &host.rejected {
        println!("REJECTED {}: {}", r.path.display(), r.reason);
    }
    ExitCode::SUCCESS
}

fn user_hash() -> ExitCode {
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        eprintln!("cannot read a password from standard input");
        return ExitCode::FAILURE;
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.chars().count() < 8 {
        eprintln!("the password must have at least 8 characters");
        return ExitCode::FAILURE;
    }
    println!("{}", huiliu_gateway::services::auth::hash_password(password));
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use huiliu_privacy::{MaskConfig, Masker};

    #[test]
    fn mask_explain_lists_masked_kept_and_rejected_spans() {
        let masker = Masker::new(&MaskConfig::default()).expect("the defaults compile");
        let mut out = Vec::new();
        let line = "电话139,2044,8812，客服热线400-820-8820，订单号1234567890123456789";
        super::write_explained(&mut out, &masker.explain(line)).expect("writes to a Vec");
        let out = String::from_utf8(out).expect("UTF-8");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "电话139****8812，客服热线400-820-8820，订单号1234567890123456789");
        assert!(lines[1].starts_with("  masked   mobile ") && lines[1].contains("-> 139****8812"), "{out}");
        assert!(lines[2].contains("电话 (contact label)"), "{out}");
        assert!(lines[3].starts_with("  kept     service_number"), "{out}");
        assert!(lines[4].contains("hotline_prefixes"), "{out}");
        assert!(lines[5].starts_with("  rejected number"), "{out}");
        assert!(lines[6].contains("order/tracking word"), "{out}");

        let mut out = Vec::new();
        super::write_explained(&mut out, &masker.explain("亲，有货吗")).expect("writes to a Vec");
        assert!(String::from_utf8(out).expect("UTF-8").contains("nothing considered"));
    }
}
