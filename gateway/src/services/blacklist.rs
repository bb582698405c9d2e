//! Blacklist (黑名单): buyers kept away from agents after a reviewed decision (seeds/002:
//! extortion with bad reviews, abuse, fraudulent returns).
//!
//! Workflow: anyone proposes an entry with a reason and evidence (an agent must give evidence);
//! a lead or admin other than the proposer approves or rejects it; only approved entries act;
//! a lead or admin may remove an entry; approved entries expire at their `expires_at`. Every
//! change is written to the audit log with who and when.
//!
//! Levels: `flag` marks the buyer for the agent, `restrict` holds their sessions with the bot
//! (auto-replies only, lowest priority), `block` drops their messages (no session, no
//! notification, no agent work; the platform is still acknowledged). The highest level of the
//! buyer's approved, unexpired entries for the shop (or for all shops of the platform) wins.
//!
//! Screening reads an in-memory index of approved entries, rebuilt after every change and on
//! [`Blacklist::reload`], so the pipeline never waits on the database.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use huiliu_sdk::{InboundEvent, Millis};

use huiliu_domain::Actor;
use huiliu_domain::text::is_blank;
pub use huiliu_store::blacklist::{BlacklistEntry, BlacklistLevel, EntryState, Proposal};
use huiliu_store::{Screen, Store, StoreError};

/// Why a blacklist action was refused.
#[derive(Debug, thiserror::Error)]
pub enum BlacklistError {
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    #[error("blacklist entry {0} not found")]
    NotFound(i64),
    #[error("expires_at is in the past")]
    Expired,
    #[error("blacklist entry {id} is {state}, which does not allow that")]
    WrongState { id: i64, state: &'static str },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone)]
struct Active {
    shop: Option<String>,
    level: BlacklistLevel,
    expires_at: Option<Millis>,
}

type Index = HashMap<(String, String), Vec<Active>>;

/// The blacklist: workflow over the store plus the screening index.
#[derive(Debug)]
pub struct Blacklist {
    store: Store,
    index: RwLock<Arc<Index>>,
    /// Bumped when a decision here changed the approved entries (an approval, a removal, an
    /// explicit reload): in a cluster the other nodes are told to reload at once.
    changes: tokio::sync::watch::Sender<u64>,
}

impl Blacklist {
    /// Loads the approved entries from the store.
    pub async fn load(store: Store) -> Result<Blacklist, StoreError> {
        let b = Blacklist { store, index: RwLock::default(), changes: tokio::sync::watch::channel(0).0 };
        b.reload().await?;
        Ok(b)
    }

    /// Rebuilds the screening index from the store.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let mut index: Index = HashMap::new();
        for e in self.store.blacklist_list(Some(EntryState::Approved)).await? {
            index.entry((e.platform, e.buyer_id)).or_default().push(Active {
                shop: e.shop,
                level: e.level,
                expires_at: e.expires_at,
            });
        }
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(index);
        Ok(())
    }

    /// [`Blacklist::reload`], and every other node told to reload too (in a cluster): a decision
    /// made outside this process (the CLI) takes effect everywhere at once.
    pub async fn reload_everywhere(&self) -> Result<(), StoreError> {
        self.reload().await?;
        self.changes.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Ticks at every change of the approved entries made through this node.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The level acting on `buyer` in `shop` at `now`, if any.
    pub fn level(&self, platform: &str, shop: &str, buyer: &str, now: Millis) -> Option<BlacklistLevel> {
        let index = self.index.read().unwrap_or_else(|p| p.into_inner()).clone();
        index
            .get(&(platform.to_owned(), buyer.to_owned()))?
            .iter()
            .filter(|a| a.shop.as_deref().is_none_or(|s| s == shop))
            .filter(|a| a.expires_at.is_none_or(|t| t > now))
            .map(|a| a.level)
            .max()
    }

    /// Proposes an entry. An agent must give evidence; every actor must give a reason.
    pub async fn propose(&self, actor: &Actor, proposal: &Proposal, now: Millis) -> Result<i64, BlacklistError> {
        if is_blank(&proposal.reason) {
            return Err(BlacklistError::Invalid("a reason is required".into()));
        }
        if is_blank(&proposal.buyer_id) || is_blank(&proposal.platform) {
            return Err(BlacklistError::Invalid("platform and buyer_id are required".into()));
        }
        if !actor.role.can_review() && proposal.evidence.iter().all(|e| e.trim().is_empty()) {
            return Err(BlacklistError::Invalid("an agent's proposal needs evidence (message ids)".into()));
        }
        if proposal.expires_at.is_some_and(|t| t <= now) {
            return Err(BlacklistError::Expired);
        }
        Ok(self.store.blacklist_propose(proposal, &actor.id, now).await?)
    }

    fn require_reviewer(actor: &Actor, what: &str) -> Result<(), BlacklistError> {
        if actor.role.can_review() {
            Ok(())
        } else {
            Err(BlacklistError::Forbidden(format!("only a lead or an admin may {what} blacklist entries")))
        }
    }

    async fn transition(
        &self,
        actor: &Actor,
        id: i64,
        from: &[EntryState],
        to: EntryState,
        note: Option<&str>,
        now: Millis,
    ) -> Result<BlacklistEntry, BlacklistError> {
        let entry = self.store.blacklist_entry(id).await?.ok_or(BlacklistError::NotFound(id))?;
        if !from.contains(&entry.state) {
            return Err(BlacklistError::WrongState { id, state: entry.state.as_str() });
        }
        let changed = self
            .store
            .blacklist_transition(id, from, to, &actor.id, note, now)
            .await?
            .ok_or(BlacklistError::WrongState { id, state: entry.state.as_str() })?;
        self.reload_everywhere().await?;
        Ok(changed)
    }

    /// Approves a proposal (lead or admin, not the proposer).
    pub async fn approve(
        &self,
        actor: &Actor,
        id: i64,
        note: Option<&str>,
        now: Millis,
    ) -> Result<BlacklistEntry, BlacklistError> {
        Self::require_reviewer(actor, "approve")?;
        let entry = self.store.blacklist_entry(id).await?.ok_or(BlacklistError::NotFound(id))?;
        if entry.proposed_by == actor.id {
            return Err(BlacklistError::Forbidden("the proposer cannot approve their own proposal".into()));
        }
        self.transition(actor, id, &[EntryState::Proposed], EntryState::Approved, note, now).await
    }

    /// Rejects a proposal (lead or admin).
    pub async fn reject(
        &self,
        actor: &Actor,
        id: i64,
        note: Option<&str>,
        now: Millis,
    ) -> Result<BlacklistEntry, BlacklistError> {
        Self::require_reviewer(actor, "reject")?;
        self.transition(actor, id, &[EntryState::Proposed], EntryState::Rejected, note, now).await
    }

    /// Removes a proposed or approved entry (lead or admin).
    pub async fn remove(
        &self,
        actor: &Actor,
        id: i64,
        note: Option<&str>,
        now: Millis,
    ) -> Result<BlacklistEntry, BlacklistError> {
        Self::require_reviewer(actor, "remove")?;
        self.transition(actor, id, &[EntryState::Proposed, EntryState::Approved], EntryState::Removed, note, now).await
    }

    /// Expires approved entries past their time; returns how many.
    pub async fn expire(&self, now: Millis) -> Result<usize, BlacklistError> {
        let ids = self.store.blacklist_expire(now).await?;
        if !ids.is_empty() {
            self.reload().await?;
        }
        Ok(ids.len())
    }

    /// The screening decision for the buyer of `event` (the flow's stage [1]).
    pub fn screen(&self, event: &InboundEvent, now: Millis) -> Screen {
        match self.level(&event.platform, &event.shop, &event.buyer.open_id, now) {
            None => Screen::Pass,
            Some(BlacklistLevel::Flag) => Screen::Flag,
            Some(BlacklistLevel::Restrict) => Screen::Restrict,
            Some(BlacklistLevel::Block) => Screen::Block,
        }
    }

    /// Entries, newest first.
    pub async fn list(&self, state: Option<EntryState>) -> Result<Vec<BlacklistEntry>, BlacklistError> {
        Ok(self.store.blacklist_list(state).await?)
    }
}
