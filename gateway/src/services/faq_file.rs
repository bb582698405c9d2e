//! Knowledge-base edits made by leads and admins through the API (list, add, change, remove an
//! entry), written to `faq.toml` so that the operator's file stays theirs: only the `[[entry]]`
//! block concerned changes (with its `[entry.when]` and `[[entry.attach]]` tables), comments and
//! every other block are kept
//! byte for byte. The edited file is checked whole before it is written (atomically: a
//! temporary file renamed over it), then reloaded as a change of the file would be; if the
//! reload refuses it (a CSV export it names went missing, say), the previous text is put back.
//!
//! Comment lines and blank lines just above a header belong to the block below them (they
//! usually describe it): a changed entry keeps the comments above it, and a removed entry takes
//! with it the comment lines directly above its header (no blank line between: they describe
//! that entry). Comments a blank line away — section headings, notes on several entries — stay.
//!
//! Entries loaded from CSV exports (`[knowledge] csv`) are listed with their file as source and
//! are read-only here: the export is the operator's file, and a row's id is its position.

use std::path::PathBuf;

use huiliu_domain::Principal;
use huiliu_domain::text::toml_string as quoted;
use huiliu_knowledge::FaqConfig;
use huiliu_knowledge::config::{Conditions, Entry};
use huiliu_store::{Store, StoreError};

/// What the editor needs from the composition root: the reload of `faq.toml` exactly as a file
/// change triggers it, and the shop ids of `shops.toml` (an entry may name only those).
pub trait FaqHost: Send + Sync + std::fmt::Debug {
    /// Reloads faq.toml; every problem when it was refused (the running base stays).
    fn reload_knowledge(&self) -> Result<(), Vec<String>>;
    /// The configured shop ids.
    fn shop_ids(&self) -> Vec<String>;
}

/// Where entries written in faq.toml itself come from, in [`Listed::source`].
pub const FAQ_SOURCE: &str = huiliu_knowledge::FAQ_FILE;

/// An entry in force and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub entry: Entry,
    /// `faq.toml`, or the CSV export's file name.
    pub source: String,
    /// Whether the API may change or remove it (only faq.toml's entries).
    pub editable: bool,
}

/// Why an edit was refused.
#[derive(Debug, thiserror::Error)]
pub enum FaqEditError {
    #[error("no entry `{0}` in the knowledge base")]
    UnknownEntry(String),
    #[error(
        "entry `{id}` comes from the CSV export `{file}` ([knowledge] csv) and is read-only here: edit that file, \
         or turn it into faq.toml entries with `huiliu faq import {file}` and drop it from [knowledge] csv"
    )]
    ReadOnly { id: String, file: String },
    #[error("the id `{0}` is taken by another entry")]
    EntryExists(String),
    #[error("shop `{0}` is not in shops.toml")]
    UnknownShop(String),
    #[error("the knowledge base would not load: {}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("faq.toml cannot be edited here: {0}")]
    NotEditable(String),
    #[error("{0}")]
    File(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The editor of `faq.toml`'s entries.
#[derive(Debug)]
pub struct FaqFile {
    disk: Disk,
    store: Store,
    /// One edit at a time: each reads, edits and reloads the whole file.
    turn: tokio::sync::Mutex<()>,
}

/// The file and its reload: the synchronous part of an edit, run off the async workers (a
/// reload compiles the knowledge base, jieba's dictionary included).
#[derive(Debug, Clone)]
struct Disk {
    path: PathBuf,
    host: std::sync::Arc<dyn FaqHost>,
}

impl FaqFile {
    pub fn new(path: PathBuf, store: Store, host: std::sync::Arc<dyn FaqHost>) -> FaqFile {
        FaqFile { disk: Disk { path, host }, store, turn: tokio::sync::Mutex::new(()) }
    }

    /// Every entry in force: faq.toml's in file order (editable), then the CSV exports' rows
    /// (read-only), each with its source.
    pub fn entries(&self) -> Result<Vec<Listed>, FaqEditError> {
        let (_, cfg) = self.disk.read()?;
        let csv = self.disk.csv_entries(&cfg)?;
        let own = cfg.entry.into_iter().map(|entry| Listed { entry, source: FAQ_SOURCE.into(), editable: true });
        let csv = csv.into_iter().map(|(source, entry)| Listed { entry, source, editable: false });
        Ok(own.chain(csv).collect())
    }

    /// Adds an entry under its own id when it has one (refused when taken), else a new
    /// `entry-N`; written at the end of the file.
    pub async fn add(&self, actor: &Principal, entry: Entry) -> Result<Entry, FaqEditError> {
        let entry = self.edit(move |disk| disk.add(entry)).await?;
        self.audit(actor, "faq_entry_added", &entry.id).await?;
        Ok(entry)
    }

    /// Replaces entry `id` (its id stays).
    pub async fn change(&self, actor: &Principal, id: &str, entry: Entry) -> Result<Entry, FaqEditError> {
        let owned = id.to_owned();
        let entry = self.edit(move |disk| disk.change(&owned, entry)).await?;
        self.audit(actor, "faq_entry_changed", id).await?;
        Ok(entry)
    }

    /// Removes entry `id`.
    pub async fn remove(&self, actor: &Principal, id: &str) -> Result<(), FaqEditError> {
        let owned = id.to_owned();
        self.edit(move |disk| disk.remove(&owned)).await?;
        self.audit(actor, "faq_entry_removed", id).await?;
        Ok(())
    }

    /// Runs one edit on a blocking thread, one at a time.
    async fn edit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Disk) -> Result<T, FaqEditError> + Send + 'static,
    ) -> Result<T, FaqEditError> {
        let _turn = self.turn.lock().await;
        let disk = self.disk.clone();
        tokio::task::spawn_blocking(move || f(&disk))
            .await
            .map_err(|e| FaqEditError::File(format!("the edit of faq.toml did not finish: {e}")))?
    }

    async fn audit(&self, actor: &Principal, action: &str, id: &str) -> Result<(), FaqEditError> {
        let now = huiliu_domain::now_millis();
        self.store.audit(&actor.id, action, &format!("faq:{id}"), "", now).await?;
        Ok(())
    }
}

impl Disk {
    /// The file's text ("" when there is none yet) and its configuration, checked.
    fn read(&self) -> Result<(String, FaqConfig), FaqEditError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(FaqEditError::File(format!("cannot read {}: {e}", self.path.display()))),
        };
        let cfg = huiliu_knowledge::parse(&text, &self.path.display().to_string()).map_err(|errors| {
            FaqEditError::NotEditable(errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
        })?;
        if entry_headers(&text).len() != cfg.entry.len() {
            return Err(FaqEditError::NotEditable(
                "entries are written other than as [[entry]] tables; edit the file by hand".into(),
            ));
        }
        Ok((text, cfg))
    }

    /// The CSV exports' entries, with the file each comes from.
    fn csv_entries(&self, cfg: &FaqConfig) -> Result<Vec<(String, Entry)>, FaqEditError> {
        let dir = self.path.parent().unwrap_or_else(|| std::path::Path::new("."));
        let mut all = Vec::new();
        for (i, name) in cfg.knowledge.csv.iter().enumerate() {
            let entries = huiliu_knowledge::load_csv(dir, i, name).map_err(|errors| {
                FaqEditError::NotEditable(errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
            })?;
            all.extend(entries.into_iter().map(|e| (name.clone(), e)));
        }
        Ok(all)
    }

    /// Why `id` cannot be edited in faq.toml: a CSV export's entry, or none at all.
    fn not_here(&self, id: &str, cfg: &FaqConfig) -> FaqEditError {
        match self.csv_entries(cfg) {
            Ok(csv) => match csv.into_iter().find(|(_, e)| e.id == id) {
                Some((file, _)) => FaqEditError::ReadOnly { id: id.into(), file },
                None => FaqEditError::UnknownEntry(id.into()),
            },
            Err(e) => e,
        }
    }

    fn add(&self, mut entry: Entry) -> Result<Entry, FaqEditError> {
        let (text, cfg) = self.read()?;
        self.check_shops(&entry.when)?;
        let csv = self.csv_entries(&cfg)?;
        let taken = |id: &str| cfg.entry.iter().any(|e| e.id == id) || csv.iter().any(|(_, e)| e.id == id);
        if entry.id.is_empty() {
            let next =
                cfg.entry.iter().filter_map(|e| e.id.strip_prefix("entry-")?.parse::<u64>().ok()).max().unwrap_or(0);
            entry.id = (next + 1..).map(|n| format!("entry-{n}")).find(|id| !taken(id)).unwrap_or_default();
        } else if taken(&entry.id) {
            return Err(FaqEditError::EntryExists(entry.id));
        }
        let mut expected = cfg.clone();
        expected.entry.push(entry.clone());
        self.write(&text, &append(&text, &entry), &expected, Some(&entry))?;
        Ok(entry)
    }

    fn change(&self, id: &str, mut entry: Entry) -> Result<Entry, FaqEditError> {
        let (text, cfg) = self.read()?;
        let index = cfg.entry.iter().position(|e| e.id == id).ok_or_else(|| self.not_here(id, &cfg))?;
        self.check_shops(&entry.when)?;
        entry.id = id.to_owned();
        let edited = replace(&text, index, Some(&entry)).ok_or_else(|| FaqEditError::UnknownEntry(id.into()))?;
        let mut expected = cfg.clone();
        expected.entry[index] = entry.clone();
        self.write(&text, &edited, &expected, Some(&entry))?;
        Ok(entry)
    }

    fn remove(&self, id: &str) -> Result<(), FaqEditError> {
        let (text, cfg) = self.read()?;
        let index = cfg.entry.iter().position(|e| e.id == id).ok_or_else(|| self.not_here(id, &cfg))?;
        let edited = replace(&text, index, None).ok_or_else(|| FaqEditError::UnknownEntry(id.into()))?;
        let mut expected = cfg.clone();
        expected.entry.remove(index);
        self.write(&text, &edited, &expected, None)
    }

    fn check_shops(&self, when: &Conditions) -> Result<(), FaqEditError> {
        if when.shops.is_empty() {
            return Ok(());
        }
        let known = self.host.shop_ids();
        match when.shops.iter().find(|s| !known.contains(s)) {
            Some(unknown) => Err(FaqEditError::UnknownShop(unknown.clone())),
            None => Ok(()),
        }
    }

    /// Checks `edited` — valid, and saying exactly `expected` (the file before with only the one
    /// entry changed: a layout the block edit misread, say a multi-line string with a line
    /// starting with `[`, is refused rather than written) — writes it, reloads; puts `before`
    /// back when the reload refuses it.
    fn write(
        &self,
        before: &str,
        edited: &str,
        expected: &FaqConfig,
        entry: Option<&Entry>,
    ) -> Result<(), FaqEditError> {
        let file = self.path.display().to_string();
        let problems = |errors: Vec<huiliu_domain::ConfigError>| {
            errors.iter().map(|e| format!("{}: {}", e.key, e.message)).collect()
        };
        // The entry's own problems (an unknown placeholder, say) are the editor's to fix...
        if let Some(entry) = entry {
            huiliu_knowledge::parse(&block(entry), &file).map_err(|e| FaqEditError::Invalid(problems(e)))?;
        }
        // ...anything else wrong with the result is the block edit misreading the file.
        let got = huiliu_knowledge::parse(edited, &file).ok();
        if got.as_ref() != Some(expected) {
            return Err(FaqEditError::NotEditable(
                "an edit of this entry's block would change more than the entry; edit the file by hand".into(),
            ));
        }
        self.replace_file(edited)?;
        if let Err(errors) = self.host.reload_knowledge() {
            if before.is_empty() {
                std::fs::remove_file(&self.path).ok();
            } else {
                self.replace_file(before)?;
            }
            if let Err(again) = self.host.reload_knowledge() {
                tracing::error!("faq.toml restored after a refused edit, and still refused: {}", again.join("; "));
            }
            return Err(FaqEditError::Invalid(errors));
        }
        Ok(())
    }

    fn replace_file(&self, text: &str) -> Result<(), FaqEditError> {
        let tmp = self.path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(|e| FaqEditError::File(format!("cannot write {}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, &self.path)
            .map_err(|e| FaqEditError::File(format!("cannot replace {}: {e}", self.path.display())))
    }
}

/// A header line's table name (`[[entry]]`, `[entry.when]`), comments and spaces removed.
fn header(line: &str) -> Option<String> {
    let t = line.trim_start();
    if !t.starts_with('[') {
        return None;
    }
    let t = t.split('#').next().unwrap_or("");
    Some(t.chars().filter(|c| !c.is_whitespace()).collect())
}

fn is_entry_header(line: &str) -> bool {
    header(line).as_deref() == Some("[[entry]]")
}

/// The line numbers of the `[[entry]]` headers.
fn entry_headers(text: &str) -> Vec<usize> {
    text.split_inclusive('\n').enumerate().filter(|(_, l)| is_entry_header(l)).map(|(i, _)| i).collect()
}

/// The `[[entry]]` block as written for `entry`.
fn block(entry: &Entry) -> String {
    let list = |items: &[String]| format!("[{}]", items.iter().map(|s| quoted(s)).collect::<Vec<_>>().join(", "));
    let mut out = format!("[[entry]]\nid = {}\nquestion = {}\n", quoted(&entry.id), quoted(&entry.question));
    if !entry.variants.is_empty() {
        out.push_str(&format!("variants = {}\n", list(&entry.variants)));
    }
    out.push_str(&format!("answer = {}\n", quoted(&entry.answer)));
    if let Some(category) = &entry.category {
        out.push_str(&format!("category = {}\n", quoted(category)));
    }
    let w = &entry.when;
    if w != &Conditions::default() {
        out.push_str("[entry.when]\n");
        for (key, items) in [("platforms", &w.platforms), ("shops", &w.shops), ("products", &w.products)] {
            if !items.is_empty() {
                out.push_str(&format!("{key} = {}\n", list(items)));
            }
        }
        if !w.order_states.is_empty() {
            out.push_str(&format!("order_states = {}\n", list(&w.order_states)));
        }
        if let Some(hours) = &w.hours {
            out.push_str(&format!("hours = {}\n", quoted(hours)));
        }
    }
    for a in &entry.attach {
        out.push_str("[[entry.attach]]\n");
        for (key, value) in [("image", &a.image), ("product", &a.product), ("title", &a.title), ("order", &a.order)] {
            if let Some(value) = value {
                out.push_str(&format!("{key} = {}\n", quoted(value)));
            }
        }
    }
    out
}

/// `text` with `entry` appended, a blank line before it.
fn append(text: &str, entry: &Entry) -> String {
    let mut out = text.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(&block(entry));
    out
}

/// `text` with the `[[entry]]` block at position `index` replaced by `entry`'s, or removed
/// (`None`). The block runs from its header to the next header other than its own
/// `[entry.…]` sub-tables and `[[entry.…]]` arrays of tables (`[[entry.attach]]`), less the comment and blank lines just above that next header. A
/// removal also takes the comment lines directly above the header (up to a blank line).
fn replace(text: &str, index: usize, entry: Option<&Entry>) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let start = *entry_headers(text).get(index)?;
    let mut end = lines
        .iter()
        .enumerate()
        .skip(start + 1)
        .find(|(_, l)| header(l).is_some_and(|h| !h.starts_with("[entry.") && !h.starts_with("[[entry.")))
        .map_or(lines.len(), |(i, _)| i);
    if end < lines.len() {
        while end > start + 1 && {
            let t = lines[end - 1].trim();
            t.is_empty() || t.starts_with('#')
        } {
            end -= 1;
        }
    }
    let mut out: String = lines[..start].concat();
    match entry {
        Some(entry) => {
            out.push_str(&block(entry));
            out.push_str(&lines[end..].concat());
        }
        None => {
            // The entry's own comments, directly above its header.
            let mut from = start;
            while from > 0 && lines[from - 1].trim_start().starts_with('#') {
                from -= 1;
            }
            out = lines[..from].concat();
            // One blank line fewer, so removing an entry does not leave a gap of two.
            let rest = lines[end..].concat();
            if out.ends_with("\n\n") && (rest.is_empty() || rest.starts_with('\n')) {
                out.pop();
            }
            out.push_str(&rest);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# the shop's answers\n[knowledge]\nthreshold = 0.4 # strict\n\n# shipping\n[[entry]]\nid = \"ship\"\nquestion = \"包邮吗\"\nanswer = \"包邮\"\n[entry.when]\nshops = [\"tb-1\"]\n\n# 投诉: never answered by the bot\n[[entry]]\nid = \"complain\"\nquestion = \"我要投诉\"\nanswer = \"抱歉\"\ncategory = \"complaint\"\n\n[[shop]]\nid = \"tb-1\"\nbot = \"always\"\n";

    fn entry(id: &str, question: &str) -> Entry {
        Entry {
            id: id.into(),
            question: question.into(),
            variants: vec!["能\"包邮\"吗\\".into()],
            answer: "{buyer}您好，\n满99包邮".into(),
            category: None,
            when: Conditions {
                order_states: vec!["paid".into()],
                hours: Some("09:00-18:00".into()),
                ..Conditions::default()
            },
            attach: Vec::new(),
        }
    }

    fn ids(text: &str) -> Vec<String> {
        huiliu_knowledge::parse(text, "faq.toml").unwrap().entry.into_iter().map(|e| e.id).collect()
    }

    #[test]
    fn a_change_touches_only_the_entrys_block_and_keeps_the_comments_around_it() {
        let changed = replace(FILE, 0, Some(&entry("ship", "运费"))).unwrap();
        let (before, after) = FILE.split_once("[[entry]]\nid = \"ship\"").unwrap();
        assert!(changed.starts_with(before), "{changed}");
        let rest = after.split_once("\n\n# 投诉").unwrap().1;
        assert!(changed.ends_with(&format!("\n\n# 投诉{rest}")), "{changed}");
        let cfg = huiliu_knowledge::parse(&changed, "faq.toml").unwrap();
        assert_eq!(cfg.entry[0], entry("ship", "运费"), "quotes, backslashes and newlines survive");
        assert_eq!(cfg.entry[1].id, "complain");
        assert_eq!(cfg.shop[0].id, "tb-1", "the [[shop]] after the entries is kept");
        assert_eq!(cfg.knowledge.threshold, 0.4);
    }

    /// An entry's `[[entry.attach]]` tables are part of its block: a change writes the new ones
    /// in place of the old (also when the file has them before its `[entry.when]`), a change of
    /// another entry keeps them byte for byte, and a removal takes them with the entry.
    #[test]
    fn an_entrys_attachments_are_written_kept_and_removed_with_its_block() {
        use huiliu_knowledge::Attach;
        let text = "[[entry]]\nid = \"size\"\nquestion = \"有尺码表吗\"\nanswer = \"看图\"\n\
                    [[entry.attach]]\nimage = \"https://img.example.com/size.png\"\n\
                    [entry.when]\nplatforms = [\"taobao\"]\n\
                    [[entry.attach]]\norder = \"{order}\"\n\n\
                    # 下一条\n[[entry]]\nid = \"b\"\nquestion = \"r\"\nanswer = \"y\"\n";
        let cfg = huiliu_knowledge::parse(text, "faq.toml").unwrap();
        assert_eq!(cfg.entry[0].attach.len(), 2, "both tables belong to the first entry");
        assert_eq!(cfg.entry[0].when.platforms, ["taobao"]);

        let mut rich = entry("size", "有尺码表吗");
        rich.attach = vec![
            Attach::image("https://img.example.com/size-2.png"),
            Attach::product("{product}", None),
            Attach::product("e60", Some("小汇电热水器\"E60\"".into())),
            Attach::order(),
        ];
        let changed = replace(text, 0, Some(&rich)).unwrap();
        let cfg = huiliu_knowledge::parse(&changed, "faq.toml").unwrap();
        assert_eq!(cfg.entry[0], rich, "written and read back the same");
        assert_eq!(cfg.entry[1].id, "b");
        let next = "\n\n# 下一条\n[[entry]]\nid = \"b\"\nquestion = \"r\"\nanswer = \"y\"\n";
        assert!(!changed.contains("size.png") && changed.ends_with(next), "{changed}");
        assert!(
            changed.contains(
                "hours = \"09:00-18:00\"\n[[entry.attach]]\nimage = \"https://img.example.com/size-2.png\"\n\
                 [[entry.attach]]\nproduct = \"{product}\"\n"
            ),
            "{changed}"
        );

        // Another entry's edit keeps these tables as written.
        let other = replace(text, 1, Some(&entry("b", "运费"))).unwrap();
        let (kept, _) = text.split_once("# 下一条").unwrap();
        assert!(other.starts_with(kept), "{other}");

        // A change without attachments drops them; a removal takes them with the entry.
        let plain = replace(&changed, 0, Some(&entry("size", "有尺码表吗"))).unwrap();
        assert!(!plain.contains("[[entry.attach]]"), "{plain}");
        let removed = replace(text, 0, None).unwrap();
        assert_eq!(removed, &next[1..], "the attachments went with the entry");
    }

    /// A line starting with `[` inside a multi-line string looks like a header to the block
    /// edit; the check of the result refuses what it would make of it.
    #[test]
    fn a_layout_the_block_edit_misreads_is_caught_by_the_result_check() {
        let text = "[[entry]]\nid = \"a\"\nquestion = \"q\"\nanswer = \"\"\"第一行\n[注意] 第二行\"\"\"\n[[entry]]\nid = \"b\"\nquestion = \"r\"\nanswer = \"x\"\n";
        let cfg = huiliu_knowledge::parse(text, "faq.toml").unwrap();
        let edited = replace(text, 0, Some(&entry("a", "新问题"))).unwrap();
        let mut expected = cfg.clone();
        expected.entry[0] = entry("a", "新问题");
        let got = huiliu_knowledge::parse(&edited, "faq.toml");
        assert!(got.is_err() || got.is_ok_and(|g| g != expected), "{edited}");
    }

    /// A host whose reload refuses when told to, counting reloads.
    #[derive(Debug, Default)]
    struct Host {
        refuse: std::sync::atomic::AtomicBool,
        reloads: std::sync::atomic::AtomicUsize,
    }

    impl FaqHost for Host {
        fn reload_knowledge(&self) -> Result<(), Vec<String>> {
            self.reloads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.refuse.load(std::sync::atomic::Ordering::SeqCst) { Err(vec!["csv gone".into()]) } else { Ok(()) }
        }

        fn shop_ids(&self) -> Vec<String> {
            vec!["tb-1".into()]
        }
    }

    /// An editor of a faq.toml holding [`FILE`], its store and host, and a lead.
    struct Editor {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
        store: Store,
        host: std::sync::Arc<Host>,
        faq: FaqFile,
        lead: Principal,
    }

    async fn editor() -> Editor {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url, huiliu_store::StoreOptions::default()).await.unwrap();
        let path = dir.path().join("faq.toml");
        std::fs::write(&path, FILE).unwrap();
        let host = std::sync::Arc::new(Host::default());
        let faq = FaqFile::new(path.clone(), store.clone(), host.clone());
        let lead =
            Principal { id: "l1".into(), name: "阿强".into(), role: huiliu_domain::Role::Lead, groups: Vec::new() };
        Editor { _dir: dir, path, store, host, faq, lead }
    }

    #[tokio::test]
    async fn the_editor_writes_reloads_audits_and_refuses_without_a_trace() {
        let Editor { _dir, path, store, host, faq, lead } = editor().await;

        let added = faq.add(&lead, entry("", "发票")).await.unwrap();
        assert_eq!(added.id, "entry-1");
        assert_eq!(
            faq.entries().unwrap().iter().map(|e| e.entry.id.as_str()).collect::<Vec<_>>(),
            ["ship", "complain", "entry-1"]
        );
        faq.change(&lead, "ship", entry("x", "运费")).await.unwrap();
        assert_eq!(faq.entries().unwrap()[0].entry.question, "运费");
        // An entry's own id, when it brings one; a taken one is refused.
        let named = faq.add(&lead, entry("vat-invoice", "能开专票吗")).await.unwrap();
        assert_eq!(named.id, "vat-invoice");
        assert!(matches!(faq.add(&lead, entry("ship", "q")).await, Err(FaqEditError::EntryExists(id)) if id == "ship"));
        faq.remove(&lead, "vat-invoice").await.unwrap();
        let mut elsewhere = entry("", "q");
        elsewhere.when.shops = vec!["jd-9".into()];
        assert!(matches!(faq.add(&lead, elsewhere).await, Err(FaqEditError::UnknownShop(s)) if s == "jd-9"));
        assert!(matches!(faq.remove(&lead, "nobody").await, Err(FaqEditError::UnknownEntry(_))));

        // A reload that refuses puts the file back as it was.
        let before = std::fs::read_to_string(&path).unwrap();
        host.refuse.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(matches!(faq.remove(&lead, "complain").await, Err(FaqEditError::Invalid(e)) if e == ["csv gone"]));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
        host.refuse.store(false, std::sync::atomic::Ordering::SeqCst);

        // A layout the block edit would misread is refused, the file untouched.
        let tricky = "[[entry]]\nid = \"a\"\nquestion = \"q\"\nanswer = \"\"\"第一行\n[注意] 第二行\"\"\"\n";
        std::fs::write(&path, tricky).unwrap();
        assert!(matches!(faq.change(&lead, "a", entry("", "q2")).await, Err(FaqEditError::NotEditable(_))));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), tricky);

        let trail = store.audit_trail("faq:entry-1").await.unwrap();
        assert_eq!(trail.len(), 1, "{trail:?}");
        assert_eq!(
            host.reloads.load(std::sync::atomic::Ordering::SeqCst),
            6,
            "four edits, a refused one and its restore"
        );
    }

    /// An entry changed through the editor keeps its attachments: written, reloaded, listed back
    /// the same; a change without them drops them.
    #[tokio::test]
    async fn an_entry_edited_with_attachments_round_trips() {
        use huiliu_knowledge::Attach;
        let Editor { _dir, path, faq, lead, .. } = editor().await;
        let mut rich = entry("", "运费");
        rich.attach = vec![Attach::image("https://img.example.com/fee.png"), Attach::product("{product}", None)];
        faq.change(&lead, "ship", rich.clone()).await.unwrap();
        let listed = faq.entries().unwrap();
        assert_eq!((listed[0].entry.id.as_str(), &listed[0].entry.attach), ("ship", &rich.attach));
        assert_eq!(listed[1].entry.id, "complain", "the next entry is not taken for an attachment");
        let added = faq.add(&lead, rich.clone()).await.unwrap();
        assert_eq!(faq.entries().unwrap()[2].entry.attach, rich.attach, "{added:?}");
        faq.change(&lead, "ship", entry("", "运费")).await.unwrap();
        assert!(faq.entries().unwrap()[0].entry.attach.is_empty());
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("[[entry.attach]]\nimage = \"https://img.example.com/fee.png\"")
        );
    }

    /// A CSV export's rows are listed with their file and refused for editing, with the reason.
    #[tokio::test]
    async fn entries_from_a_csv_export_are_listed_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url, huiliu_store::StoreOptions::default()).await.unwrap();
        let path = dir.path().join("faq.toml");
        std::fs::write(&path, FILE.replacen("[knowledge]\n", "[knowledge]\ncsv = [\"qianniu.csv\"]\n", 1)).unwrap();
        std::fs::write(dir.path().join("qianniu.csv"), "问题,相似问法,答案\n能开发票吗,开票|专票,可以开\n").unwrap();
        let faq = FaqFile::new(path.clone(), store, std::sync::Arc::new(Host::default()));
        let lead =
            Principal { id: "l1".into(), name: "阿强".into(), role: huiliu_domain::Role::Lead, groups: Vec::new() };
        let listed = faq.entries().unwrap();
        let sources: Vec<(&str, &str, bool)> =
            listed.iter().map(|l| (l.entry.id.as_str(), l.source.as_str(), l.editable)).collect();
        assert_eq!(
            sources,
            [("ship", "faq.toml", true), ("complain", "faq.toml", true), ("qianniu-1", "qianniu.csv", false)]
        );
        let before = std::fs::read_to_string(&path).unwrap();
        for refused in
            [faq.remove(&lead, "qianniu-1").await, faq.change(&lead, "qianniu-1", entry("", "q")).await.map(|_| ())]
        {
            let Err(e) = refused else { panic!("a CSV entry was edited") };
            assert!(matches!(&e, FaqEditError::ReadOnly { file, .. } if file == "qianniu.csv"), "{e}");
            assert!(e.to_string().contains("huiliu faq import qianniu.csv"), "{e}");
        }
        assert!(matches!(faq.add(&lead, entry("qianniu-1", "q")).await, Err(FaqEditError::EntryExists(_))));
        assert!(matches!(faq.remove(&lead, "nobody").await, Err(FaqEditError::UnknownEntry(_))));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    }

    #[test]
    fn removing_and_appending_entries() {
        // The comment directly above an entry goes with it; the rest of the file stays.
        let removed = replace(FILE, 1, None).unwrap();
        assert_eq!(ids(&removed), ["ship"]);
        assert!(!removed.contains("投诉"), "{removed}");
        assert!(removed.ends_with("shops = [\"tb-1\"]\n\n[[shop]]\nid = \"tb-1\"\nbot = \"always\"\n"), "{removed}");
        let removed = replace(&removed, 0, None).unwrap();
        assert!(ids(&removed).is_empty());
        assert_eq!(
            removed,
            "# the shop's answers\n[knowledge]\nthreshold = 0.4 # strict\n\n[[shop]]\nid = \"tb-1\"\nbot = \"always\"\n"
        );
        // A comment a blank line away (a section heading) is not the entry's.
        let sections = "# 售前\n\n# 运费\n# 两行说明\n[[entry]]\nid = \"a\"\nquestion = \"q\"\nanswer = \"x\"\n# 下一条\n[[entry]]\nid = \"b\"\nquestion = \"r\"\nanswer = \"y\"\n";
        assert_eq!(
            replace(sections, 0, None).unwrap(),
            "# 售前\n\n# 下一条\n[[entry]]\nid = \"b\"\nquestion = \"r\"\nanswer = \"y\"\n"
        );
        assert_eq!(
            replace(sections, 1, None).unwrap(),
            "# 售前\n\n# 运费\n# 两行说明\n[[entry]]\nid = \"a\"\nquestion = \"q\"\nanswer = \"x\"\n"
        );
        let added = append(&removed, &entry("entry-1", "发票"));
        assert_eq!(ids(&added), ["entry-1"]);
        assert_eq!(append("", &entry("entry-1", "q")), block(&entry("entry-1", "q")));
        assert!(replace(FILE, 2, None).is_none());
        assert_eq!(entry_headers("[[ entry ]] # first\nid = \"a\"\n[entry.when]\n[[entry]]\n"), [0, 3]);
    }
}
