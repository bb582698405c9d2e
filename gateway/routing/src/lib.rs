//! # huiliu-routing — routing (DESIGN §5): skill groups, rules, assignment, queue, explain.
//!
//! A pure, synchronous, deterministic engine: no I/O, no clock (every call takes `now`,
//! epoch milliseconds), no panics on any input. The gateway owns the files, the timers and
//! the store; it feeds the engine events and executes the [`Action`]s it returns, in order.
//!
//! # Wiring (for the gateway)
//!
//! ```text
//! config   parse(text, "routing.toml") -> RoutingConfig | Vec<ConfigError>  (huiliu check)
//!          RoutingConfig::check_shops(&known_shop_ids, file)                 (cross-check with shops.toml)
//! start    Engine::new(config, now)                                          (all agents offline)
//!          Engine::restore(config, &agents, sessions, now) -> (Engine, actions)   (after a restart)
//! events   router.arrive(Conversation, now)            a session needs an agent
//!          router.close(session, now)                  closed by agent / idle / buyer gone
//!          router.first_response(session, now)         the agent replied for the first time
//!          router.set_status(agent, AgentStatus, now)  online / busy / away / offline
//!          router.set_max_sessions(agent, Some(n), now) a lead changes a 接待上限 at run time
//!          router.transfer(session, TransferTo, HandoverNote, now)
//!          router.reload(new_config, now)              live reload; Err keeps the running config
//! timers   router.next_deadline() -> Option<ms>; at that instant call router.tick(now)
//! reading  router.session(id), router.agent(id), router.queue_len(group), router.queued(group),
//!          router.state() -> RouterState
//! dry run  explain(&config, &state, &SampleEvent) -> String   (huiliu route explain)
//!          dry_run(&config, &state, &SampleEvent) -> Decision  (the same, structured, for the API)
//! ```
//!
//! Every call returns `Vec<Action>`: [`Action::Assign`] (push to the agent's workbench; the
//! decision inside is the record DESIGN §1 asks for), [`Action::Queue`] (the session waits;
//! store its group and position), [`Action::NotifyBuyer`] (send the text to the buyer),
//! [`Action::Unassign`] (take the session off the agent; an `Assign` or `Queue` follows),
//! [`Action::FirstResponseOverdue`] (alert the lead). Errors ([`RouterError`]) leave the
//! state unchanged; deadlines that fell due during such a call are returned by the next one.
//! A reassignment (first-response timeout, requeue, transfer) is an `Unassign` followed, in
//! the same call, by the `Assign` or `Queue` that places the session again. The event file
//! of `huiliu route explain` is JSON, documented on [`SampleEvent`].
//!
//! # Code map
//!
//! - `config`: the `routing.toml` structs (their doc comments are the user documentation) in
//!   `config/mod.rs`; `config/parse.rs`: [`parse`], locating serde's errors, the time range,
//!   date and template parsers; `config/validate.rs`: validation that reports every error with
//!   its key, one function per section.
//! - `compiled`: the configuration with dense indexes; categories; rule matching.
//! - `calendar`: business hours in Beijing time (fixed UTC+8).
//! - `engine`: [`Engine`], one `impl Engine` per concern: `engine/mod.rs` (the data model,
//!   the constructor and the event entry points), `agents` (the availability index, caps,
//!   eligibility, status changes), `plan` (sticky routing and the walk through a rule's
//!   targets), `apply` (assign, queue, detach), `queue` (lanes, positions, estimates,
//!   draining), `deadlines` (advancing time, overflow waits, first-response limits),
//!   `transfer`, `restore` (restore and reload), `describe` (decision records), `inspect`
//!   (views, [`RouterState`], dry runs), `invariants` (test oracle).
//! - `treap`: the order-statistic set the queues are made of.
//! - `types`: actions, decisions, inputs; `explain`: dry runs; `outlook`: what a new
//!   conversation of a shop would meet (group, open or closed, expected wait), from the
//!   configuration and a [`RouterState`], for the knowledge-base bot.
//! - `tests`: the engine's behaviour tests; `tests/properties.rs`: property tests over random
//!   event sequences.
//!
//! # Behaviour
//!
//! - **Category** (`[[category]]`): the first category, in order, with a keyword in the
//!   buyer's text (NFKC-folded), where an open refund counts as a hit for
//!   `routing.open_refund_category`; complaints come first by default so they win.
//! - **Rules** (`[[rule]]`, first match wins) give targets (groups, with a wait and a minimum
//!   proficiency) and a priority. No match: `routing.fallback_group`.
//! - **Sticky**: a returning buyer goes to their last agent if that agent is in the rule's
//!   first target group, serves the shop, and last served them within `sticky_ttl_s`; if that
//!   agent is busy or full the buyer waits `sticky_wait_s` for them, then the normal path.
//! - **Assignment**: among members online and under their cap, serving the shop, with the
//!   target's proficiency: `least_load` (load = active ÷ cap, tie → idle longest),
//!   `round_robin` or `proficiency_first`.
//! - **Queue**: by `enqueued_at − priority × (60 s ÷ aging_rate)`: priority is a head start
//!   that waiting catches up with, so nobody starves and equally old conversations go by
//!   priority. Freed capacity drains the most urgent conversation first, each to the best agent
//!   by policy, so agents logging in together take turns. A full queue overflows to the next
//!   target at once; at the last target the buyer gets the `overflow` message and the
//!   conversation is **kept** (state `overflow`), served in turn without a promised position.
//! - **Overflow**: after a target's `wait_s` (counted from opening if the group is closed),
//!   the conversation moves to the next target, keeping its place.
//! - **Hours**: a closed group sends `off_hours` and holds the conversation until opening
//!   (or hands it to its open `off_hours_group`); conversations already waiting stay.
//! - **First response**: an assigned agent who has not replied within
//!   `first_response_limit_s` loses the session to the best other member with room; if nobody
//!   has room it stays and `FirstResponseOverdue` is raised (again after each further limit).
//! - **Away / offline**: sessions are kept or requeued per `on_away` / `on_offline`; whoever
//!   waited for that agent in person goes the normal way.
//! - **Transfer** to a group (the transferring agent excluded from getting it back) or to a
//!   named agent (waits `transfer_wait_s` if they are full or busy), with a handover note that
//!   rides on the next decisions until someone is assigned.
//! - **Reload**: assignments stay with agents who remain (others are requeued); waiting
//!   conversations are re-routed by the new rules keeping their arrival time; those whose
//!   group changed are reported with a `Queue` action.

#![deny(unsafe_code)]

mod calendar;
mod compiled;
pub mod config;
mod engine;
mod explain;
mod outlook;
pub mod reason;
mod treap;
mod types;

#[cfg(test)]
mod tests;

pub use config::{
    AgentConfig, CategoryConfig, GroupConfig, GroupMessages, HoursConfig, MatchConfig, Messages, OnLeave, Policy,
    ROUTING_FILE, Role, RoutingConfig, RoutingSettings, RuleConfig, TargetConfig, default_categories, parse,
};
pub use engine::{AgentState, Engine, RestoredAgent, RestoredSession, RouterState};
pub use explain::{DryRunError, EventTime, SampleAgent, SampleEvent, dry_run, explain, explain_in, render_decision};
pub use outlook::{
    ClosedSample, HandleTime, HandleTimes, LEARN_MIN_CLOSED, LEARN_WINDOW_DAYS, Outlook, outlook, shop_group,
};
pub use reason::{Lang, Names, Reason};
pub use types::{
    Action, AgentStatus, AgentView, Candidate, Conversation, Decision, DecisionReasons, Eligibility, Handover,
    HandoverNote, RouterError, RuleRef, SessionId, SessionView, TransferTo, Trigger, UnassignReason, WaitState,
};
