//! What intake did per shop since the last summary: each message is logged at `debug` only,
//! and one `info` line per active shop a minute says how much came in (a log line per buyer
//! message cost more than storing it at full rate).

use std::sync::Mutex;

use huiliu_store::ItemOutcome;

/// Counts per (platform, shop), reset by each summary.
#[derive(Debug, Default)]
pub struct Tally(Mutex<Vec<ShopTally>>);

/// One shop's counts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ShopTally {
    pub platform: String,
    pub shop: String,
    /// Buyer messages stored.
    pub messages: u64,
    /// Order and refund events stored.
    pub trade: u64,
    /// Redeliveries absorbed.
    pub duplicates: u64,
    /// Blocked buyers' events dropped.
    pub blocked: u64,
    /// Units kept as dead letters.
    pub dead_letters: u64,
}

impl Tally {
    /// Counts one committed batch (`shops[i]` is the shop of `outcomes[i]`).
    pub fn add<'a>(
        &self,
        platform: &str,
        outcomes: &[ItemOutcome],
        shops: impl Iterator<Item = &'a str>,
        dead: (&str, usize),
    ) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (outcome, shop) in outcomes.iter().zip(shops) {
            let t = entry(&mut all, platform, shop);
            match outcome {
                ItemOutcome::Message { .. } => t.messages += 1,
                ItemOutcome::Trade { .. } => t.trade += 1,
                ItemOutcome::Duplicate => t.duplicates += 1,
                ItemOutcome::Blocked => t.blocked += 1,
            }
        }
        if dead.1 > 0 {
            entry(&mut all, platform, dead.0).dead_letters += dead.1 as u64;
        }
    }

    /// The counts since the last call, and a fresh start.
    pub fn take(&self) -> Vec<ShopTally> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Logs one line per shop that had traffic since the last summary.
    pub fn log_summary(&self, period_secs: u64) {
        for t in self.take() {
            tracing::info!(
                platform = %t.platform,
                shop = %t.shop,
                messages = t.messages,
                trade = t.trade,
                duplicates = t.duplicates,
                blocked = t.blocked,
                dead_letters = t.dead_letters,
                "intake in the last {period_secs} s"
            );
        }
    }
}

/// The shop's entry (a short list: a linear scan allocates nothing for a shop already seen).
fn entry<'v>(all: &'v mut Vec<ShopTally>, platform: &str, shop: &str) -> &'v mut ShopTally {
    let i = match all.iter().position(|t| t.platform == platform && t.shop == shop) {
        Some(i) => i,
        None => {
            all.push(ShopTally { platform: platform.to_owned(), shop: shop.to_owned(), ..ShopTally::default() });
            all.len() - 1
        }
    };
    &mut all[i]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_shop_until_taken() {
        let tally = Tally::default();
        let stored = ItemOutcome::Message {
            customer_id: 1,
            session_id: 1,
            message_id: 1,
            new_session: true,
            screen: huiliu_store::Screen::Pass,
        };
        let out = [stored.clone(), ItemOutcome::Duplicate, stored, ItemOutcome::Blocked];
        tally.add("douyin", &out, ["dy-1", "dy-1", "dy-2", "dy-2"].into_iter(), ("dy-1", 2));
        tally.add(
            "douyin",
            &[ItemOutcome::Trade { customer_id: 1, session_id: None }],
            ["dy-1"].into_iter(),
            ("dy-1", 0),
        );
        let taken = tally.take();
        assert_eq!(taken.len(), 2);
        let dy1 = &taken[0];
        assert_eq!(
            (dy1.shop.as_str(), dy1.messages, dy1.duplicates, dy1.trade, dy1.dead_letters),
            ("dy-1", 1, 1, 1, 2)
        );
        let dy2 = &taken[1];
        assert_eq!((dy2.shop.as_str(), dy2.messages, dy2.blocked), ("dy-2", 1, 1));
        assert!(tally.take().is_empty(), "a summary starts the count again");
    }
}
