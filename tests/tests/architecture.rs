//! Architecture guards: the shape of the code, checked like any other behaviour.
//!
//! 1. **Crate layering** ([`CRATE_LAYERING`]): each workspace package's normal (and build)
//!    dependencies on other workspace packages are a subset of what the table allows, every
//!    package is in the table, and nothing depends on the composition root, `huiliu-gateway`.
//! 2. **No module cycles** inside any workspace package: references between modules, lifted to
//!    the sibling modules that contain them, form no strongly connected component, except the
//!    cycles listed in [`KNOWN_CYCLES`].
//! 3. **Daemon layers** ([`DAEMON_LAYERS`]): in `gateway/src`, no module imports a module of a
//!    higher layer, except the edges listed in [`KNOWN_VIOLATIONS`].
//!
//! It only reads files and runs `cargo metadata --no-deps`; it compiles nothing.
//!
//! The source scanning is our own, hand-written, and deliberately small — not a Rust parser. It
//! lexes away comments, strings and character literals, follows `use` trees (braces, `self`,
//! `as`, globs) and `crate::` / `super::` / `self::` paths anywhere in the code (and, in a
//! binary's `main.rs`, paths through the package's own library name), tracks inline `mod`
//! blocks, and skips `#[cfg(test)]` items and `tests.rs` files. A reference resolves to the
//! longest module prefix of its path, then follows one module's `use` bindings (re-exports) if
//! the next segment names one. Not followed: paths produced by macros, glob re-exports, `#[path]`
//! attributes. A file maps to its module by its place under `src/` (`a/b.rs` and `a/b/mod.rs`
//! are `a::b`; `lib.rs` is the root; a binary's `main.rs` next to a library is the pseudo-module
//! `main`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

#[path = "architecture/scanner.rs"]
mod scanner;
use scanner::*;

// ---------------------------------------------------------------------------------------------
// The intended shape, as data.
// ---------------------------------------------------------------------------------------------

/// Which workspace packages each workspace package may depend on (normal and build
/// dependencies). Dev-dependencies are not checked: tests may link whatever they exercise
/// (the gateway's own tests use `huiliu-e2e`), and nothing a dev-dependency brings reaches a
/// shipped artifact. A package missing from this table fails the check: place it on purpose.
const CRATE_LAYERING: &[(&str, &[&str])] = &[
    // The plugin contract knows nothing of the gateway.
    ("huiliu-sdk", &[]),
    // Connectors are built against the SDK only.
    ("huiliu-taobao", &["huiliu-sdk"]),
    ("huiliu-douyin", &["huiliu-sdk"]),
    ("huiliu-jd", &["huiliu-sdk"]),
    ("huiliu-wechat-shop", &["huiliu-sdk"]),
    // The gateway's inner crates, lowest first.
    ("huiliu-domain", &["huiliu-sdk"]),
    ("huiliu-privacy", &[]),
    ("huiliu-routing", &["huiliu-sdk", "huiliu-domain"]),
    ("huiliu-store", &["huiliu-sdk", "huiliu-domain"]),
    // The knowledge base (智能客服 matching) is pure like the routing engine.
    ("huiliu-knowledge", &["huiliu-domain"]),
    // The composition root.
    (
        "huiliu-gateway",
        &["huiliu-sdk", "huiliu-domain", "huiliu-privacy", "huiliu-routing", "huiliu-store", "huiliu-knowledge"],
    ),
    // The platform simulators share no code with the connectors (or anything else here), so a
    // misunderstanding of a protocol cannot pass by being mirrored on both sides.
    ("huiliu-sim", &[]),
    // The end-to-end crate runs the daemon and plugins as built artifacts; it links the SDK's
    // types and the simulators, never the gateway or a connector.
    ("huiliu-e2e", &["huiliu-sdk", "huiliu-sim"]),
    // Deliberately broken plugins for the plugin-host tests.
    ("fixture-panic-init", &["huiliu-sdk"]),
    ("fixture-panic-decode", &["huiliu-sdk"]),
    ("fixture-abi-mismatch", &["huiliu-sdk"]),
    ("fixture-no-symbol", &[]),
];

/// The composition root: no package may depend on it (dev-dependencies excluded, as above).
const COMPOSITION_ROOT: &str = "huiliu-gateway";

/// The daemon package whose modules are layered.
const DAEMON: &str = "huiliu-gateway";

/// The daemon's top-level modules in layers, top to bottom. A module may use modules of its own
/// layer and of the layers below; using a module of a layer above fails. `main` is the binary
/// (`src/main.rs`). Every top-level module must appear exactly once. References to items of the
/// crate root (`lib.rs`: `Gateway`, `StartError`, …) are not layered; the check counts them.
/// A module in no layer, or a listed module that no longer exists, fails the check: when the
/// daemon's modules change, this table changes with them.
const DAEMON_LAYERS: &[(&str, &[&str])] = &[
    (
        "the composition root: the binary, the configuration loader, live reload, the demo, logging",
        &["main", "config", "reload", "demo", "telemetry", "ops"],
    ),
    ("the edge: the HTTP surface with the agent API, the platform ingress", &["api", "ingress"]),
    ("the flow: the one inbound flow and the one reply door", &["flow"]),
    ("services and the delivery worker", &["services", "outbox"]),
    (
        "infrastructure: the plugin host, the event hub, metrics, cluster leases and NATS",
        &["plugins", "events", "metrics", "cluster"],
    ),
];

/// Imports from a lower layer to a higher one that exist today, as (from module, to module,
/// why). Each is a debt to pay: move the shared piece down, then delete the entry. An entry
/// that no longer occurs fails the check too, so this list only shrinks.
const KNOWN_VIOLATIONS: &[(&str, &str, &str)] = &[];

/// Module cycles that exist today, as (package, the modules of the cycle, why). A cycle found
/// passes only if one entry contains all its modules (so a cycle may shrink, never grow); an
/// entry that matches no cycle fails the check, so this list only shrinks.
const KNOWN_CYCLES: &[(&str, &[&str], &str)] = &[];

/// Daemon modules that must not name a crate, as (module path prefix under `gateway/src`, crate,
/// why): the API reaches the data through the services and the flow, never the store.
const FORBIDDEN_CRATES: &[(&str, &str, &str)] = &[
    ("api", "huiliu_store", "the API never touches the store: it goes through services and the flow"),
    ("ingress", "huiliu_store", "ingress hands what it decoded to the flow, which stores it"),
];

// ---------------------------------------------------------------------------------------------
// The checks.
// ---------------------------------------------------------------------------------------------

#[test]
fn crate_layering() {
    let ws = workspace();
    let mut out = String::new();
    let mut failures = Vec::new();
    let allowed: BTreeMap<&str, BTreeSet<&str>> =
        CRATE_LAYERING.iter().map(|(p, deps)| (*p, deps.iter().copied().collect())).collect();
    assert_eq!(allowed.len(), CRATE_LAYERING.len(), "a package is listed twice in CRATE_LAYERING");
    let names: BTreeSet<&str> = ws.packages.iter().map(|p| p.name.as_str()).collect();

    writeln!(out, "crate layering: normal and build dependencies on workspace packages (dev excluded)").unwrap();
    for package in &ws.packages {
        let actual: BTreeSet<&str> = package
            .deps
            .iter()
            .filter(|(dep, kind)| kind != "dev" && names.contains(dep.as_str()))
            .map(|(dep, _)| dep.as_str())
            .collect();
        let Some(allow) = allowed.get(package.name.as_str()) else {
            failures.push(format!(
                "package `{}` is not in CRATE_LAYERING; add it with the workspace packages it may use (today: {})",
                package.name,
                list(&actual)
            ));
            continue;
        };
        writeln!(out, "  {:<22} allowed {{{}}}  actual {{{}}}", package.name, join(allow), join(&actual)).unwrap();
        for dep in actual.difference(allow) {
            failures.push(format!(
                "`{}` depends on `{dep}`, which CRATE_LAYERING does not allow (allowed: {{{}}})",
                package.name,
                join(allow)
            ));
        }
        if actual.contains(COMPOSITION_ROOT) {
            failures.push(format!(
                "`{}` depends on `{COMPOSITION_ROOT}`, the composition root nothing imports",
                package.name
            ));
        }
    }
    for (package, deps) in CRATE_LAYERING {
        if !names.contains(package) {
            failures.push(format!("CRATE_LAYERING lists `{package}`, which is not a workspace package"));
        }
        if deps.contains(&COMPOSITION_ROOT) {
            failures.push(format!("CRATE_LAYERING lets `{package}` use `{COMPOSITION_ROOT}`; nothing may"));
        }
    }
    finish("crate layering", out, failures);
}

#[test]
fn no_module_cycles() {
    let ws = workspace();
    let mut out = String::new();
    let mut failures = Vec::new();
    writeln!(out, "module cycles: references lifted to sibling modules, strongly connected components").unwrap();
    let mut known_used = vec![false; KNOWN_CYCLES.len()];
    for package in &ws.packages {
        let Some(graph) = module_graph(package) else { continue };
        let lifted = lift(&graph);
        let edges: BTreeSet<(Module, Module)> = lifted.keys().cloned().collect();
        let cycles = strongly_connected(&edges);
        writeln!(
            out,
            "  {:<22} {:>3} modules, {:>4} references between modules, {:>3} sibling edges, {} cycle(s)",
            package.name,
            graph.modules.len(),
            graph.refs.len(),
            edges.len(),
            cycles.len()
        )
        .unwrap();
        for cycle in cycles {
            let members: BTreeSet<&Module> = cycle.iter().collect();
            let names: Vec<String> = cycle.iter().map(|m| show(m)).collect();
            let mut text = format!("module cycle in `{}` among {{{}}}:", package.name, names.join(", "));
            for ((from, to), refs) in &lifted {
                if members.contains(from) && members.contains(to) {
                    write!(text, "\n      {} -> {}:{}", show(from), show(to), evidence(refs)).unwrap();
                }
            }
            let known = KNOWN_CYCLES
                .iter()
                .position(|(p, known, _)| *p == package.name && names.iter().all(|n| known.contains(&n.as_str())));
            match known {
                Some(k) => {
                    known_used[k] = true;
                    writeln!(out, "  KNOWN CYCLE ({}): {text}", KNOWN_CYCLES[k].2).unwrap();
                }
                None => failures.push(text),
            }
        }
    }
    for ((package, members, _), used) in KNOWN_CYCLES.iter().zip(known_used) {
        if !used {
            failures.push(format!(
                "KNOWN_CYCLES lists {{{}}} in `{package}`, which no longer form a cycle: delete the entry",
                members.join(", ")
            ));
        }
    }
    finish("module cycles", out, failures);
}

#[test]
fn daemon_layers() {
    let ws = workspace();
    let mut out = String::new();
    let mut failures = Vec::new();
    let package = ws.packages.iter().find(|p| p.name == DAEMON).expect("the daemon package is in the workspace");
    let graph = module_graph(package).expect("the daemon has sources");

    let mut layer_of: BTreeMap<&str, usize> = BTreeMap::new();
    writeln!(out, "daemon layers of `{DAEMON}` (top to bottom; an import may only point down or across):").unwrap();
    for (index, (name, modules)) in DAEMON_LAYERS.iter().enumerate() {
        writeln!(out, "  {index}. {{{}}}  — {name}", modules.join(", ")).unwrap();
        for m in *modules {
            if layer_of.insert(m, index).is_some() {
                failures.push(format!("DAEMON_LAYERS lists `{m}` twice"));
            }
        }
    }
    let top_level: BTreeSet<&str> = graph.modules.iter().filter(|m| m.len() == 1).map(|m| m[0].as_str()).collect();
    for m in &top_level {
        if !layer_of.contains_key(m) {
            failures.push(format!("`{DAEMON}` module `{m}` is in no layer of DAEMON_LAYERS; place it"));
        }
    }
    for m in layer_of.keys() {
        if !top_level.contains(m) {
            failures.push(format!("DAEMON_LAYERS lists `{m}`, which is not a top-level module of `{DAEMON}`"));
        }
    }

    let known: BTreeMap<(&str, &str), &str> = KNOWN_VIOLATIONS.iter().map(|(f, t, why)| ((*f, *t), *why)).collect();
    let mut seen_known: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut checked = BTreeSet::new();
    let mut upward: BTreeMap<(&str, &str), Vec<&Reference>> = BTreeMap::new();
    for r in &graph.refs {
        let Some(from) = r.from.first().map(String::as_str) else { continue };
        let Some(to) = r.to.first().map(String::as_str) else { continue };
        if from == to {
            continue;
        }
        let (Some(&lf), Some(&lt)) = (layer_of.get(from), layer_of.get(to)) else { continue };
        checked.insert((from, to));
        if lf > lt {
            upward.entry((from, to)).or_default().push(r);
        }
    }
    writeln!(out, "  {} module-to-module edges checked:", checked.len()).unwrap();
    let mut by_from: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in &checked {
        by_from.entry(from).or_default().push(to);
    }
    for (index, (_, modules)) in DAEMON_LAYERS.iter().enumerate() {
        for m in *modules {
            if let Some(to) = by_from.get(m) {
                let shown: Vec<String> = to.iter().map(|t| format!("{t}({})", layer_of[t])).collect();
                writeln!(out, "    {m}({index}) -> {}", shown.join(", ")).unwrap();
            }
        }
    }
    for ((from, to), refs) in &upward {
        let (lf, lt) = (layer_of[from], layer_of[to]);
        let mut text =
            format!("`{from}` (layer {lf}) imports `{to}` (layer {lt}, above it), {} reference(s):", refs.len());
        text.push_str(&evidence(refs));
        if let Some(why) = known.get(&(*from, *to)) {
            seen_known.insert((*from, *to));
            writeln!(out, "  KNOWN VIOLATION ({why}): {text}").unwrap();
        } else {
            failures.push(text);
        }
    }
    for (from, to) in known.keys() {
        if !seen_known.contains(&(*from, *to)) {
            failures.push(format!(
                "KNOWN_VIOLATIONS lists `{from}` -> `{to}`, which no longer occurs (or is no longer upward): delete the entry"
            ));
        }
    }
    if !graph.to_root.is_empty() {
        writeln!(
            out,
            "  references to crate-root items (lib.rs), not layered: {}",
            graph.to_root.iter().map(|(m, n)| format!("{m} {n}")).collect::<Vec<_>>().join(", ")
        )
        .unwrap();
    }
    finish("daemon layers", out, failures);
}

/// The scanner on a made-up crate: what counts as a reference, what does not, and a cycle.
#[test]
fn scanner_self_check() {
    let source = |under_src: &str, text: &str| Source {
        under_src: under_src.into(),
        shown: format!("src/{under_src}"),
        text: text.into(),
    };
    let sources = vec![
        source(
            "lib.rs",
            "mod a; mod b; mod c; pub mod d;\n#[cfg(test)] mod testonly;\npub use crate::b::Thing; // crate::c::X\n\
             const S: &str = \"crate::c::Y\";",
        ),
        source("a.rs", "use crate::{b::{self, Other as O}, d::inner};\npub fn helper() -> crate::Thing { todo!() }"),
        source("b.rs", "pub struct Thing; pub struct Other;\nfn g() { super::a::helper(); }"),
        source(
            "c.rs",
            "/* crate::a::x /* nested */ crate::a */ const R: &str = r#\"crate::a::\"x\"#;\n\
             fn h<'a>(x: &'a str) -> char { '\\'' }\nconst Q: char = '\"'; const B: u8 = b'\"';\n\
             #[cfg(test)]\nmod tests { use crate::a::*; }\npub(crate) fn w() {}\npub(in crate::c) fn v() {}",
        ),
        source("d/mod.rs", "pub mod inner;\nuse self::inner::Z;\nmod nested { fn f() { super::inner::z(); } }"),
        source("d/inner.rs", "pub struct Z; pub fn z() {}\nuse super::super::c::w;"),
        source("tests.rs", "use crate::a::A;"),
        source("testonly.rs", "use crate::a::A;"),
        source("main.rs", "use mycrate::a::helper;\nfn main() { mycrate::b::Thing; }"),
    ];
    let graph =
        build_graph(sources, &Roots { lib: Some("lib.rs"), bins: &["main.rs".to_owned()], lib_name: Some("mycrate") });
    let modules: Vec<String> = graph.modules.iter().map(|m| show(m)).collect();
    assert_eq!(modules, ["crate", "a", "b", "c", "d", "d::inner", "main"]);
    let edges: Vec<String> = lift(&graph).keys().map(|(f, t)| format!("{} -> {}", show(f), show(t))).collect();
    assert_eq!(edges, ["a -> b", "a -> d", "b -> a", "d -> c", "main -> a", "main -> b"]);
    let a_to_b = graph.refs.iter().filter(|r| show(&r.from) == "a" && show(&r.to) == "b").count();
    assert_eq!(a_to_b, 3, "b, b::Other and crate::Thing (re-exported from b)");
    let cycles = strongly_connected(&lift(&graph).keys().cloned().collect());
    assert_eq!(cycles, [vec![vec!["a".to_owned()], vec!["b".to_owned()]]]);
}

/// Lifts each reference to the sibling modules that contain its two ends (below their lowest
/// common ancestor): the edges cycles are sought among, each with the references that make it.
fn lift(graph: &Graph) -> BTreeMap<(Module, Module), Vec<&Reference>> {
    let mut lifted: BTreeMap<(Module, Module), Vec<&Reference>> = BTreeMap::new();
    for r in &graph.refs {
        let common = r.from.iter().zip(&r.to).take_while(|(a, b)| a == b).count();
        lifted.entry((r.from[..=common].to_vec(), r.to[..=common].to_vec())).or_default().push(r);
    }
    lifted
}

/// Prints what a check saw, then fails with every problem at once.
fn finish(check: &str, mut out: String, failures: Vec<String>) {
    if failures.is_empty() {
        writeln!(out, "{check}: ok").unwrap();
        println!("{out}");
    } else {
        writeln!(out, "{check}: {} problem(s)", failures.len()).unwrap();
        println!("{out}");
        panic!("{check}: {} problem(s):\n  - {}", failures.len(), failures.join("\n  - "));
    }
}

fn join(set: &BTreeSet<&str>) -> String {
    set.iter().copied().collect::<Vec<_>>().join(", ")
}

fn list(set: &BTreeSet<&str>) -> String {
    if set.is_empty() { "none".into() } else { join(set) }
}

// ---------------------------------------------------------------------------------------------
// The workspace, from `cargo metadata --no-deps`.
// ---------------------------------------------------------------------------------------------

struct Workspace {
    root: PathBuf,
    packages: Vec<Package>,
}

struct Package {
    name: String,
    /// The library's crate name (`huiliu_gateway`), if there is a library.
    lib_name: Option<String>,
    /// The library's root file, if any.
    lib_root: Option<PathBuf>,
    /// Binary root files.
    bin_roots: Vec<PathBuf>,
    /// (package, kind) of every dependency; kind is `normal`, `dev` or `build`.
    deps: Vec<(String, String)>,
}

fn workspace() -> &'static Workspace {
    static WS: OnceLock<Workspace> = OnceLock::new();
    WS.get_or_init(|| {
        let output = Command::new(env!("CARGO"))
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo metadata runs");
        assert!(output.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
        let meta: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
        let root = PathBuf::from(meta["workspace_root"].as_str().expect("workspace_root"));
        let members: BTreeSet<&str> =
            meta["workspace_members"].as_array().expect("members").iter().filter_map(Value::as_str).collect();
        let mut packages = Vec::new();
        for p in meta["packages"].as_array().expect("packages") {
            if !members.contains(p["id"].as_str().unwrap_or_default()) {
                continue;
            }
            let mut package = Package {
                name: p["name"].as_str().expect("name").to_owned(),
                lib_name: None,
                lib_root: None,
                bin_roots: Vec::new(),
                deps: p["dependencies"]
                    .as_array()
                    .expect("dependencies")
                    .iter()
                    .map(|d| {
                        let name = d["name"].as_str().expect("dependency name").to_owned();
                        (name, d["kind"].as_str().unwrap_or("normal").to_owned())
                    })
                    .collect(),
            };
            for t in p["targets"].as_array().expect("targets") {
                let kinds: Vec<&str> = t["kind"].as_array().expect("kind").iter().filter_map(Value::as_str).collect();
                let src = PathBuf::from(t["src_path"].as_str().expect("src_path"));
                if kinds.iter().any(|k| matches!(*k, "lib" | "rlib" | "cdylib" | "dylib" | "staticlib" | "proc-macro"))
                {
                    package.lib_name = Some(t["name"].as_str().expect("target name").replace('-', "_"));
                    package.lib_root = Some(src);
                } else if kinds.contains(&"bin") {
                    package.bin_roots.push(src);
                }
            }
            packages.push(package);
        }
        packages.sort_by(|a, b| a.name.cmp(&b.name));
        Workspace { root, packages }
    })
}

// ---------------------------------------------------------------------------------------------
// The module graph of one package.
// ---------------------------------------------------------------------------------------------

/// A module path below the crate root; the root is empty.
type Module = Vec<String>;

fn show(m: &[String]) -> String {
    if m.is_empty() { "crate".into() } else { m.join("::") }
}

/// One reference from a module to another that is neither its ancestor nor its descendant.
struct Reference {
    from: Module,
    to: Module,
    /// The file, relative to the workspace root.
    file: String,
    line: usize,
    /// The path as written (a `use` tree expanded to this one path).
    path: Vec<String>,
    in_use: bool,
}

/// The references, one line per place: `file:line  use crate::a::{B, C}`.
fn evidence(refs: &[&Reference]) -> String {
    let mut places: BTreeMap<(&str, usize, bool), BTreeSet<&[String]>> = BTreeMap::new();
    for r in refs {
        places.entry((r.file.as_str(), r.line, r.in_use)).or_default().insert(&r.path);
    }
    let mut out = String::new();
    for ((file, line, in_use), paths) in places {
        let paths: Vec<&[String]> = paths.into_iter().collect();
        let common =
            (0..paths[0].len()).take_while(|&k| paths.iter().all(|p| p.len() > k + 1 && p[k] == paths[0][k])).count();
        let text = if paths.len() == 1 {
            paths[0].join("::")
        } else {
            let tails: Vec<String> = paths.iter().map(|p| p[common..].join("::")).collect();
            format!("{}::{{{}}}", paths[0][..common].join("::"), tails.join(", "))
        };
        write!(out, "\n        {file}:{line}  {}{text}", if in_use { "use " } else { "" }).unwrap();
    }
    out
}

struct Graph {
    modules: BTreeSet<Module>,
    refs: Vec<Reference>,
    /// References to items of the crate root, by the top-level module they come from.
    to_root: BTreeMap<String, usize>,
}

/// Where a scanned file sits and how its paths read.
struct SourceFile {
    shown: String,
    module: Module,
    /// What `crate::` means in this file: the root, or `main` for a binary beside a library.
    crate_base: Module,
    /// The library's name usable as an absolute path prefix (in a binary's `main.rs`).
    lib_prefix: Option<String>,
    scan: FileScan,
}

/// One source file of a package, before scanning.
struct Source {
    /// Its path under `src/`, with `/` separators (`api/v1.rs`).
    under_src: String,
    /// How reports name it (relative to the workspace root).
    shown: String,
    text: String,
}

/// How a package's targets sit under `src/`.
struct Roots<'a> {
    /// The library's root under `src/` (`lib.rs`), if any.
    lib: Option<&'a str>,
    /// Binary roots under `src/` (`main.rs`).
    bins: &'a [String],
    /// The library's crate name, as binaries write it.
    lib_name: Option<&'a str>,
}

fn module_graph(package: &Package) -> Option<Graph> {
    let ws = workspace();
    let root_file = package.lib_root.as_ref().or(package.bin_roots.first())?;
    let src = root_file.parent()?.to_path_buf();
    let under = |p: &Path| {
        p.strip_prefix(&src).ok().map(|r| r.iter().map(|c| c.to_string_lossy()).collect::<Vec<_>>().join("/"))
    };
    let mut paths = Vec::new();
    collect_rs(&src, &mut paths);
    paths.sort();
    let sources = paths
        .iter()
        .map(|path| Source {
            under_src: under(path).expect("under src"),
            shown: path.strip_prefix(&ws.root).unwrap_or(path).display().to_string(),
            text: std::fs::read_to_string(path).expect("readable source"),
        })
        .collect();
    let lib = package.lib_root.as_deref().and_then(under);
    let bins: Vec<String> = package.bin_roots.iter().filter_map(|b| under(b)).collect();
    Some(build_graph(sources, &Roots { lib: lib.as_deref(), bins: &bins, lib_name: package.lib_name.as_deref() }))
}

fn build_graph(sources: Vec<Source>, roots: &Roots<'_>) -> Graph {
    let mut files = Vec::new();
    for source in sources {
        let comps: Vec<&str> = source.under_src.split('/').collect();
        let is_lib_root = roots.lib == Some(source.under_src.as_str());
        let is_bin_root = roots.bins.contains(&source.under_src);
        let (module, crate_base, lib_prefix) = if is_lib_root || (is_bin_root && roots.lib.is_none()) {
            (Vec::new(), Vec::new(), None)
        } else if is_bin_root {
            let stem = source.under_src.trim_end_matches(".rs").replace('/', "::");
            (vec![stem.clone()], vec![stem], roots.lib_name.map(str::to_owned))
        } else {
            if comps.len() > 1 && comps[0] == "bin" {
                continue; // src/bin/*: separate binaries, not modules of this crate.
            }
            let mut module: Module = comps.iter().map(|c| c.to_string()).collect();
            let last = module.pop().expect("a file name");
            let stem = last.strip_suffix(".rs").expect(".rs").to_owned();
            if stem == "tests" {
                continue; // test modules may use anything
            }
            if stem != "mod" {
                module.push(stem);
            }
            (module, Vec::new(), None)
        };
        let scan = scan_file(&lex(&source.text), lib_prefix.as_deref());
        if scan.test_only_file {
            continue;
        }
        files.push(SourceFile { shown: source.shown, module, crate_base, lib_prefix, scan });
    }

    // Children declared `#[cfg(test)] mod x;` are test code: drop them and their descendants.
    let test_only: Vec<Module> = files
        .iter()
        .flat_map(|f| f.scan.test_children.iter().map(|c| [f.module.clone(), vec![c.clone()]].concat()))
        .collect();
    files.retain(|f| !test_only.iter().any(|t| f.module.starts_with(t)));

    let modules: BTreeSet<Module> = files.iter().map(|f| f.module.clone()).chain([Vec::new()]).collect();
    // Each module's `use` bindings, made absolute: name -> path.
    let mut bindings: BTreeMap<Module, BTreeMap<String, Module>> = BTreeMap::new();
    for f in &files {
        for (name, raw) in &f.scan.bindings {
            if let Some(abs) = absolute(raw, &f.module, f, &modules) {
                bindings.entry(f.module.clone()).or_default().insert(name.clone(), abs);
            }
        }
    }

    let mut refs = Vec::new();
    let mut to_root: BTreeMap<String, usize> = BTreeMap::new();
    for f in &files {
        for r in &f.scan.refs {
            let mut current = f.module.clone();
            current.extend(r.inline.iter().cloned());
            let Some(abs) = absolute(&r.path, &current, f, &modules) else { continue };
            let to = resolve(&abs, &modules, &bindings);
            let from = &f.module;
            if to.is_empty() && !from.is_empty() {
                *to_root.entry(from[0].clone()).or_default() += 1;
            }
            if to.starts_with(from) || from.starts_with(&to) {
                continue; // itself, a descendant, or an ancestor
            }
            refs.push(Reference {
                from: from.clone(),
                to,
                file: f.shown.clone(),
                line: r.line,
                path: r.path.clone(),
                in_use: r.in_use,
            });
        }
    }
    Graph { modules, refs, to_root }
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A path as written, made absolute (below the crate root), if it points into this crate.
fn absolute(raw: &[String], current: &[String], file: &SourceFile, modules: &BTreeSet<Module>) -> Option<Module> {
    let first = raw.first()?;
    let mut base: Module;
    let rest: &[String];
    if first == "crate" {
        base = file.crate_base.clone();
        rest = &raw[1..];
    } else if file.lib_prefix.as_deref() == Some(first.as_str()) {
        base = Vec::new();
        rest = &raw[1..];
    } else if first == "self" {
        base = current.to_vec();
        rest = &raw[1..];
    } else if first == "super" {
        base = current.to_vec();
        let supers = raw.iter().take_while(|s| *s == "super").count();
        for _ in 0..supers {
            base.pop()?;
        }
        rest = &raw[supers..];
    } else {
        // A path relative to the current module: only a child module counts.
        let child = [current.to_vec(), vec![first.clone()]].concat();
        if !modules.contains(&child) {
            return None;
        }
        base = current.to_vec();
        rest = raw;
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The module an absolute path lands in: its longest module prefix, following a `use` binding
/// of that module when the next segment names one.
fn resolve(
    abs: &[String],
    modules: &BTreeSet<Module>,
    bindings: &BTreeMap<Module, BTreeMap<String, Module>>,
) -> Module {
    let mut path = abs.to_vec();
    for _hop in 0..8 {
        let k = (0..=path.len()).rev().find(|k| modules.contains(&path[..*k].to_vec())).unwrap_or(0);
        let module = path[..k].to_vec();
        let Some(next) = path.get(k) else { return module };
        match bindings.get(&module).and_then(|b| b.get(next)) {
            Some(target) if target.as_slice() != &path[..=k] => {
                path = [target.clone(), path[k + 1..].to_vec()].concat();
            }
            _ => return module,
        }
    }
    path
}

/// Tarjan's strongly connected components with more than one member, each sorted.
fn strongly_connected(edges: &BTreeSet<(Module, Module)>) -> Vec<Vec<Module>> {
    let mut nodes: Vec<&Module> = edges.iter().flat_map(|(a, b)| [a, b]).collect();
    nodes.sort();
    nodes.dedup();
    let index_of: BTreeMap<&Module, usize> = nodes.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let mut succ = vec![Vec::new(); nodes.len()];
    for (a, b) in edges {
        succ[index_of[a]].push(index_of[b]);
    }

    struct State {
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(v: usize, succ: &[Vec<usize>], s: &mut State) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in &succ[v] {
            match s.index[w] {
                None => {
                    visit(w, succ, s);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().expect("on the stack");
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.out.push(component);
            }
        }
    }
    let n = nodes.len();
    let mut s = State {
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(v, &succ, &mut s);
        }
    }
    let mut cycles: Vec<Vec<Module>> =
        s.out.into_iter().map(|c| c.into_iter().map(|i| nodes[i].clone()).collect::<Vec<_>>()).collect();
    for c in &mut cycles {
        c.sort();
    }
    cycles.sort();
    cycles
}

/// The API and the ingress never name the store crate.
#[test]
fn forbidden_crates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gateway/src");
    let mut failures = Vec::new();
    for (module, krate, why) in FORBIDDEN_CRATES {
        let mut files = Vec::new();
        let dir = root.join(module);
        collect_rs(&dir, &mut files);
        let single = root.join(format!("{module}.rs"));
        if single.exists() {
            files.push(single);
        }
        assert!(!files.is_empty(), "`{module}` has no source files under {}", root.display());
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                if line.contains(krate) && !line.trim_start().starts_with("//") {
                    failures.push(format!("{}:{}: names `{krate}` ({why})", file.display(), n + 1));
                }
            }
        }
        println!("{module}: does not name {krate}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The SDK is handed to plugin authors as a folder to copy (docs/writing-a-connector.md §2): its
/// manifest must build outside this workspace, so it inherits nothing from it, states its MSRV,
/// and keeps the version the workspace pins.
#[test]
fn the_sdk_manifest_stands_alone() {
    let root = huiliu_e2e::workspace_root();
    let sdk = std::fs::read_to_string(root.join("sdk/Cargo.toml")).unwrap();
    assert!(
        !sdk.contains(".workspace") && !sdk.contains("workspace = true"),
        "sdk/Cargo.toml inherits from the workspace"
    );
    for key in ["edition = ", "rust-version = ", "license = "] {
        assert!(sdk.lines().any(|l| l.starts_with(key)), "sdk/Cargo.toml does not state `{key}`");
    }
    let version = |text: &str| -> String {
        text.lines()
            .find(|l| l.starts_with("version = "))
            .map(|l| l.trim_start_matches("version = ").trim_matches('"').to_owned())
            .unwrap_or_default()
    };
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert_eq!(version(&sdk), version(&workspace), "the SDK's version and [workspace.package] version differ");
    assert!(workspace.contains(&format!("huiliu-sdk = {{ path = \"sdk\", version = \"{}\" }}", version(&sdk))));
}
