//! The knowledge-base bot's figures (智能客服的核心指标), kept in the database so that they
//! survive a restart and every node of a cluster reads the same totals: counts per platform
//! (answers per entry, hand-overs per reason, conversations, resolved, unresolved), the bot's
//! conversations not settled yet, and the questions it could not match.
//!
//! Written once per bot answer or hand-over (not per buyer message). Whether the buyer wrote
//! again after the bot's last answer is read from the session (`last_inbound_at`) when the
//! conversations are settled, so intake writes nothing more for the bot. Settling deletes each
//! conversation it counts in the same statement (`DELETE … RETURNING`), so two nodes settling at
//! once count each conversation once.

use sqlx::Row;

use crate::{Store, StoreError};
use huiliu_sdk::Millis;

/// What a count counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BotCountKind {
    /// Answers, per entry (`name`: the entry id).
    Answered,
    /// Hand-overs to an agent, per reason (`name`: the reason word).
    Handover,
    /// Conversations the bot answered (counted at its first answer).
    Conversation,
    /// Of those, resolved without a human.
    Resolved,
    /// Of those, not: handed over, or the buyer wrote again and the bot did not answer.
    Unresolved,
}

impl BotCountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BotCountKind::Answered => "answered",
            BotCountKind::Handover => "handover",
            BotCountKind::Conversation => "conversation",
            BotCountKind::Resolved => "resolved",
            BotCountKind::Unresolved => "unresolved",
        }
    }

    fn parse(s: &str) -> Option<BotCountKind> {
        Some(match s {
            "answered" => BotCountKind::Answered,
            "handover" => BotCountKind::Handover,
            "conversation" => BotCountKind::Conversation,
            "resolved" => BotCountKind::Resolved,
            "unresolved" => BotCountKind::Unresolved,
            _ => return None,
        })
    }
}

/// One stored count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotCount {
    pub platform: String,
    pub kind: BotCountKind,
    /// The entry id (answers), the reason (hand-overs), "" otherwise.
    pub name: String,
    pub n: i64,
    /// When it was first counted.
    pub since: Millis,
}

/// A question the bot could not match, as the trainer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnansweredQuestion {
    /// The buyer's message, masked (at most [`UNANSWERED_CHARS`] characters).
    pub text: String,
    pub times: i64,
    pub last_at: Millis,
}

/// Everything stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BotFigures {
    pub counts: Vec<BotCount>,
    /// The latest unmatched questions, newest first.
    pub unanswered: Vec<UnansweredQuestion>,
    /// The bot's conversations not settled yet.
    pub awaiting: i64,
}

/// What one settling counted: one platform per conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    pub resolved: Vec<String>,
    pub unresolved: Vec<String>,
}

/// How much of an unmatched question is kept.
pub const UNANSWERED_CHARS: usize = 200;
/// How many unmatched questions (occurrences) are kept; older ones are pruned when settling.
pub const UNANSWERED_KEPT: i64 = 1000;

const COUNT: &str = "INSERT INTO bot_counts (platform, kind, name, n, since) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (platform, kind, name) DO UPDATE SET n = bot_counts.n + excluded.n";

async fn count(
    conn: &mut sqlx::AnyConnection,
    platform: &str,
    kind: BotCountKind,
    name: &str,
    n: i64,
    at: Millis,
) -> Result<(), StoreError> {
    sqlx::query(COUNT).bind(platform).bind(kind.as_str()).bind(name).bind(n).bind(at).execute(conn).await?;
    Ok(())
}

/// How many of `platforms` name each platform.
fn per_platform(platforms: &[String]) -> std::collections::BTreeMap<&str, i64> {
    let mut per = std::collections::BTreeMap::new();
    for p in platforms {
        *per.entry(p.as_str()).or_default() += 1;
    }
    per
}

impl Store {
    /// The bot answered in a session with entry `entry` at `at`. `first`: its first answer
    /// there, which opens a bot conversation (to be settled as resolved or not); a later one
    /// moves the conversation's clock, unless it was settled already (not counted twice).
    pub async fn bot_answered(
        &self,
        session_id: i64,
        platform: &str,
        entry: &str,
        first: bool,
        at: Millis,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        count(&mut tx, platform, BotCountKind::Answered, entry, 1, at).await?;
        if first {
            count(&mut tx, platform, BotCountKind::Conversation, "", 1, at).await?;
            sqlx::query(
                "INSERT INTO bot_open (session_id, platform, answered_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (session_id) DO UPDATE SET answered_at = excluded.answered_at",
            )
            .bind(session_id)
            .bind(platform)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query("UPDATE bot_open SET answered_at = $1 WHERE session_id = $2")
                .bind(at)
                .bind(session_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// The bot kept a conversation without answering (a card that asks nothing): the buyer's
    /// message is not one left waiting.
    pub async fn bot_kept(&self, session_id: i64, at: Millis) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE bot_open SET answered_at = $1 WHERE session_id = $2")
            .bind(at)
            .bind(session_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The bot handed a session's message to an agent for `reason`; `unmatched` is the masked
    /// question no entry matched, kept for the trainer. A conversation the bot had answered is
    /// settled as not resolved.
    pub async fn bot_handed_over(
        &self,
        session_id: i64,
        customer_id: i64,
        platform: &str,
        reason: &str,
        unmatched: Option<&str>,
        at: Millis,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        count(&mut tx, platform, BotCountKind::Handover, reason, 1, at).await?;
        let open: Vec<String> = sqlx::query_scalar("DELETE FROM bot_open WHERE session_id = $1 RETURNING platform")
            .bind(session_id)
            .fetch_all(&mut *tx)
            .await?;
        for platform in open {
            count(&mut tx, &platform, BotCountKind::Unresolved, "", 1, at).await?;
        }
        if let Some(text) = unmatched.map(str::trim).filter(|t| !t.is_empty()) {
            let text: String = text.chars().take(UNANSWERED_CHARS).collect();
            sqlx::query("INSERT INTO bot_unanswered (customer_id, text, at) VALUES ($1, $2, $3)")
                .bind(customer_id)
                .bind(text)
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// Settles the bot's conversations whose outcome is known at `cutoff` (= now less
    /// faq.toml's `resolved_after_minutes`): resolved when the bot's last answer is at or
    /// before it and the buyer has not written since; not resolved when the buyer wrote after
    /// the bot's last answer, at or before it (the bot did not answer that message in time).
    /// Each conversation is counted once, by whichever node settles it. Also prunes the
    /// unmatched questions to the latest [`UNANSWERED_KEPT`].
    pub async fn bot_settle(&self, cutoff: Millis, now: Millis) -> Result<Settled, StoreError> {
        let mut tx = self.write_tx().await?;
        let resolved: Vec<String> = sqlx::query_scalar(
            "DELETE FROM bot_open WHERE answered_at <= $1 AND NOT EXISTS \
             (SELECT 1 FROM sessions s WHERE s.id = bot_open.session_id AND s.last_inbound_at > bot_open.answered_at) \
             RETURNING platform",
        )
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await?;
        let unresolved: Vec<String> = sqlx::query_scalar(
            "DELETE FROM bot_open WHERE EXISTS (SELECT 1 FROM sessions s WHERE s.id = bot_open.session_id \
             AND s.last_inbound_at > bot_open.answered_at AND s.last_inbound_at <= $1) RETURNING platform",
        )
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await?;
        for (platform, n) in per_platform(&resolved) {
            count(&mut tx, platform, BotCountKind::Resolved, "", n, now).await?;
        }
        for (platform, n) in per_platform(&unresolved) {
            count(&mut tx, platform, BotCountKind::Unresolved, "", n, now).await?;
        }
        sqlx::query(
            "DELETE FROM bot_unanswered WHERE at < \
             (SELECT MIN(at) FROM (SELECT at FROM bot_unanswered ORDER BY at DESC LIMIT $1) latest)",
        )
        .bind(UNANSWERED_KEPT)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Settled { resolved, unresolved })
    }

    /// The stored figures, with the `unanswered` latest distinct unmatched questions.
    pub async fn bot_figures(&self, unanswered: i64) -> Result<BotFigures, StoreError> {
        let mut counts = Vec::new();
        for r in sqlx::query("SELECT platform, kind, name, n, since FROM bot_counts ORDER BY platform, kind, name")
            .fetch_all(self.pool())
            .await?
        {
            let kind: String = r.try_get(1)?;
            let Some(kind) = BotCountKind::parse(&kind) else {
                return Err(StoreError::Corrupt(format!("bot_counts: unknown kind `{kind}`")));
            };
            counts.push(BotCount {
                platform: r.try_get(0)?,
                kind,
                name: r.try_get(2)?,
                n: r.try_get(3)?,
                since: r.try_get(4)?,
            });
        }
        let questions =
            sqlx::query("SELECT text, COUNT(*), MAX(at) FROM bot_unanswered GROUP BY text ORDER BY 3 DESC, 1 LIMIT $1")
                .bind(unanswered)
                .fetch_all(self.pool())
                .await?
                .into_iter()
                .map(|r| Ok(UnansweredQuestion { text: r.try_get(0)?, times: r.try_get(1)?, last_at: r.try_get(2)? }))
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let awaiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bot_open").fetch_one(self.pool()).await?;
        Ok(BotFigures { counts, unanswered: questions, awaiting })
    }
}
