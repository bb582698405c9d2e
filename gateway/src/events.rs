//! Events the gateway publishes to its own listeners (the workbench stream, the demo log).
//! They carry ids only: listeners read masked content from the store.
//!
//! The [`EventHub`] numbers every event, keeps the last [`RING`] of them for clients that
//! reconnect (`since=<seq>` replays what they missed), and stamps each with its audience:
//! the session's agent and skill group at the time, so the stream can show each user only
//! their own events.
//!
//! Stream clients subscribe per user ([`EventHub::resume_for`]): each event is handed only to
//! the clients that may see it (the session's agent, leads of its group, admins), so an event
//! costs its recipients, not every connected client — thousands of agents can be connected.
//! A client that falls [`CLIENT_QUEUE`] events behind is dropped from delivery; it resumes from
//! its last seen event out of the ring, so nothing is missed while the ring holds it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use huiliu_domain::{Principal, Role};

/// How many recent events the hub keeps for resume.
pub const RING: usize = 8192;

/// Events queued for one stream client before it counts as fallen behind.
pub const CLIENT_QUEUE: usize = 1024;

/// Something happened that a listener may want to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GatewayEvent {
    /// A buyer message was stored. `event_id` is the platform's own message id (what the
    /// gateway deduplicates on), so a client can match the event to what the platform pushed.
    MessageIn {
        session_id: i64,
        customer_id: i64,
        message_id: i64,
        new_session: bool,
        platform: String,
        shop: String,
        event_id: String,
    },
    /// A reply was queued.
    MessageOut { session_id: i64, message_id: i64 },
    /// A reply's delivery state changed (`sent`, `failed`, `retrying`).
    Delivery { session_id: i64, message_id: i64, state: String, detail: Option<String> },
    /// An order or refund event was stored.
    Trade { customer_id: i64, session_id: Option<i64> },
    /// Routing gave a session to an agent. `trigger` says what made routing decide
    /// (`arrival`, `transfer`, `drain`, `first_response_timeout` …; the decision's trigger), so
    /// a workbench can tell a new conversation from a transfer to the agent.
    Assigned { session_id: i64, agent: String, group: String, trigger: String },
    /// Routing put a session in a group's queue.
    Queued { session_id: i64, group: String, position: u32 },
    /// Routing took a session from an agent (a reassignment follows).
    Unassigned { session_id: i64, agent: String },
    /// Something a lead should look at.
    Alert { kind: String, session_id: Option<i64>, detail: String },
    /// A channel (TMC, stream) changed state: `state` is its word (`connected`, `connecting`,
    /// `backing_off`, `stopped`), `status` the one-line summary.
    Channel { platform: String, shop: String, channel: String, status: String, state: String },
    /// A session was closed (by an agent, or idle).
    Closed { session_id: i64, reason: String },
    /// An agent's status changed.
    AgentStatus { agent: String, status: String },
}

impl GatewayEvent {
    /// The session the event is about.
    pub fn session_id(&self) -> Option<i64> {
        match self {
            GatewayEvent::MessageIn { session_id, .. }
            | GatewayEvent::MessageOut { session_id, .. }
            | GatewayEvent::Delivery { session_id, .. }
            | GatewayEvent::Assigned { session_id, .. }
            | GatewayEvent::Queued { session_id, .. }
            | GatewayEvent::Unassigned { session_id, .. }
            | GatewayEvent::Closed { session_id, .. } => Some(*session_id),
            GatewayEvent::Trade { session_id, .. } | GatewayEvent::Alert { session_id, .. } => *session_id,
            GatewayEvent::Channel { .. } | GatewayEvent::AgentStatus { .. } => None,
        }
    }
}

/// Who may see an event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Audience {
    /// The agent of the event's session (or the agent it is about).
    pub agent: Option<String>,
    /// The skill group of the event's session.
    pub group: Option<String>,
}

/// A numbered event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stamped {
    /// 1, 2, 3… in publishing order: for this process, or in a cluster the event stream's
    /// sequence (the same number on every node).
    pub seq: u64,
    /// When it was published (ms).
    pub at: i64,
    #[serde(skip)]
    pub audience: Audience,
    #[serde(flatten)]
    pub event: GatewayEvent,
}

impl Stamped {
    /// Whether `user` may see this event: an admin everything; a lead their groups' sessions,
    /// their own, and shop-wide events (channels, alerts without a session, agents' status);
    /// an agent only their own sessions and their own status.
    pub fn visible_to(&self, user: &Principal) -> bool {
        if user.role == Role::Admin || self.audience.agent.as_deref() == Some(user.id.as_str()) {
            return true;
        }
        if user.role != Role::Lead {
            return false;
        }
        match &self.audience.group {
            Some(g) => user.groups.contains(g),
            None => self.event.session_id().is_none(),
        }
    }
}

#[derive(Debug)]
struct Client {
    user: Principal,
    tx: mpsc::Sender<Arc<Stamped>>,
}

/// A user's stream subscription: live events they may see, after the replay.
#[derive(Debug)]
pub struct Subscription {
    /// Pass to [`EventHub::unsubscribe`] when the client goes.
    pub id: u64,
    /// Live events (`seq` > `last`), in order. Ends when the client fell behind (or the hub
    /// went away): resume from the last event seen.
    pub rx: mpsc::Receiver<Arc<Stamped>>,
    /// The kept events after `since` that the user may see, or the gap.
    pub replay: Result<Vec<Arc<Stamped>>, Gap>,
    /// The last sequence number at subscription.
    pub last: u64,
}

#[derive(Debug, Default)]
struct HubState {
    seq: u64,
    ring: VecDeque<Arc<Stamped>>,
    /// Session → (agent, group), as the events said.
    routes: HashMap<i64, Audience>,
    /// Stream clients by subscription id.
    clients: HashMap<u64, Client>,
    /// Subscription ids of agents' clients, by agent id.
    by_agent: HashMap<String, Vec<u64>>,
    /// Subscription ids of leads' and admins' clients (they see more than their own).
    watchers: Vec<u64>,
    next_client: u64,
}

/// Publishes numbered events to live subscribers and keeps the recent ones for resume. A cheap
/// handle: clones share one hub.
#[derive(Debug, Clone)]
pub struct EventHub {
    state: Arc<Mutex<HubState>>,
    tx: broadcast::Sender<Arc<Stamped>>,
    /// In a cluster: where [`EventHub::send`] hands events (to the cluster's stream); the hub
    /// is then fed by [`EventHub::ingest`] in the stream's order.
    global: Arc<std::sync::OnceLock<mpsc::UnboundedSender<GatewayEvent>>>,
}

/// A resume point older than the hub remembers: the client must reload its lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub oldest: u64,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

impl EventHub {
    pub fn new() -> EventHub {
        EventHub { state: Arc::default(), tx: broadcast::channel(4096).0, global: Arc::default() }
    }

    /// Records where open sessions are (at start, from the store), so that their events reach
    /// their agents before routing says anything new.
    pub fn seed(&self, sessions: impl IntoIterator<Item = (i64, Option<String>, Option<String>)>) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for (id, agent, group) in sessions {
            st.routes.insert(id, Audience { agent, group });
        }
    }

    /// Publishes an event. In a cluster it goes to the cluster's stream first and is numbered
    /// when it comes back (the answer is then 0).
    pub fn send(&self, event: GatewayEvent) -> u64 {
        if let Some(global) = self.global.get() {
            let _ = global.send(event);
            return 0;
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let seq = st.seq + 1;
        self.publish(&mut st, seq, huiliu_domain::now_millis(), event);
        seq
    }

    /// From now on events go to `global` (the cluster's stream) and come back through
    /// [`EventHub::ingest`].
    pub fn go_global(&self, global: mpsc::UnboundedSender<GatewayEvent>) {
        let _ = self.global.set(global);
    }

    /// Whether events are numbered by the cluster's stream (the same on every node).
    pub fn is_global(&self) -> bool {
        self.global.get().is_some()
    }

    /// An event from the cluster's stream, numbered `seq` there; one already seen is ignored.
    pub fn ingest(&self, seq: u64, at: i64, event: GatewayEvent) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if seq > st.seq {
            self.publish(&mut st, seq, at, event);
        }
    }

    /// A stream sequence number this node cannot read (skipped, so later ones still count).
    pub fn skip(&self, seq: u64) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.seq = st.seq.max(seq);
    }

    fn publish(&self, st: &mut HubState, seq: u64, at: i64, event: GatewayEvent) {
        let audience = match &event {
            GatewayEvent::Assigned { session_id, agent, group, .. } => {
                let a = Audience { agent: Some(agent.clone()), group: Some(group.clone()) };
                st.routes.insert(*session_id, a.clone());
                a
            }
            GatewayEvent::Queued { session_id, group, .. } => {
                let a = Audience { agent: None, group: Some(group.clone()) };
                st.routes.insert(*session_id, a.clone());
                a
            }
            GatewayEvent::Unassigned { session_id, agent } => {
                // The agent losing it hears of it; afterwards the session belongs to its group.
                let group = st.routes.get(session_id).and_then(|a| a.group.clone());
                st.routes.insert(*session_id, Audience { agent: None, group: group.clone() });
                Audience { agent: Some(agent.clone()), group }
            }
            GatewayEvent::Closed { session_id, .. } => st.routes.remove(session_id).unwrap_or_default(),
            GatewayEvent::AgentStatus { agent, .. } => Audience { agent: Some(agent.clone()), group: None },
            other => match other.session_id() {
                Some(id) => st.routes.get(&id).cloned().unwrap_or_default(),
                None => Audience::default(),
            },
        };
        st.seq = seq;
        let stamped = Arc::new(Stamped { seq, at, audience, event });
        if st.ring.len() == RING {
            st.ring.pop_front();
        }
        st.ring.push_back(stamped.clone());
        // Sent under the lock: subscribers see events in `seq` order.
        let _ = self.tx.send(stamped.clone());
        st.deliver(&stamped);
    }

    /// Live events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Stamped>> {
        self.tx.subscribe()
    }

    /// Subscribes `user`'s stream client and returns the kept events after `since` they may
    /// see, atomically: every later event they may see arrives on the receiver, none twice.
    pub fn resume_for(&self, user: &Principal, since: u64) -> Subscription {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        st.next_client += 1;
        let id = st.next_client;
        if user.role == Role::Agent {
            st.by_agent.entry(user.id.clone()).or_default().push(id);
        } else {
            st.watchers.push(id);
        }
        st.clients.insert(id, Client { user: user.clone(), tx });
        let replay = st.replay(since).map(|all| all.into_iter().filter(|e| e.visible_to(user)).collect());
        Subscription { id, rx, replay, last: st.seq }
    }

    /// Ends a stream client's subscription.
    pub fn unsubscribe(&self, id: u64) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).remove_client(id);
    }

    /// The agents with a stream client subscribed now.
    pub fn connected_agents(&self) -> Vec<String> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).by_agent.keys().cloned().collect()
    }

    /// Stream clients subscribed now.
    pub fn clients(&self) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clients.len()
    }

    /// The last published sequence number.
    pub fn last_seq(&self) -> u64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).seq
    }
}

impl HubState {
    /// The kept events after `since`, or the gap.
    fn replay(&self, since: u64) -> Result<Vec<Arc<Stamped>>, Gap> {
        let oldest = self.ring.front().map_or(self.seq + 1, |e| e.seq);
        if since >= self.seq {
            Ok(Vec::new())
        } else if since + 1 < oldest {
            Err(Gap { oldest })
        } else {
            Ok(self.ring.iter().filter(|e| e.seq > since).cloned().collect())
        }
    }

    /// Hands `event` to the stream clients that may see it: the agent's own clients and the
    /// watchers (leads, admins) whose view includes it. A full or closed client is dropped.
    fn deliver(&mut self, event: &Arc<Stamped>) {
        let mut gone = Vec::new();
        let own = event.audience.agent.as_ref().and_then(|a| self.by_agent.get(a));
        for id in own.into_iter().flatten().chain(self.watchers.iter()) {
            let Some(c) = self.clients.get(id) else { continue };
            if event.visible_to(&c.user) && c.tx.try_send(event.clone()).is_err() {
                gone.push(*id);
            }
        }
        for id in gone {
            self.remove_client(id);
        }
    }

    fn remove_client(&mut self, id: u64) {
        let Some(c) = self.clients.remove(&id) else { return };
        if c.user.role == Role::Agent {
            if let Some(ids) = self.by_agent.get_mut(&c.user.id) {
                ids.retain(|i| *i != id);
                if ids.is_empty() {
                    self.by_agent.remove(&c.user.id);
                }
            }
        } else {
            self.watchers.retain(|i| *i != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, role: Role, groups: &[&str]) -> Principal {
        Principal { id: id.into(), name: id.into(), role, groups: groups.iter().map(|g| g.to_string()).collect() }
    }

    fn msg(session_id: i64) -> GatewayEvent {
        GatewayEvent::MessageIn {
            session_id,
            customer_id: 1,
            message_id: 1,
            new_session: false,
            platform: "douyin".into(),
            shop: "dy".into(),
            event_id: format!("m{session_id}"),
        }
    }

    #[test]
    fn audiences_follow_routing() {
        let hub = EventHub::new();
        let (a01, a02) = (user("a01", Role::Agent, &["presales"]), user("a02", Role::Agent, &["presales"]));
        let (lead, other_lead, admin) =
            (user("l", Role::Lead, &["presales"]), user("m", Role::Lead, &["aftersales"]), user("x", Role::Admin, &[]));
        let mut rx = hub.subscribe();
        hub.send(msg(7));
        hub.send(GatewayEvent::Queued { session_id: 7, group: "presales".into(), position: 1 });
        hub.send(GatewayEvent::Assigned {
            session_id: 7,
            agent: "a01".into(),
            group: "presales".into(),
            trigger: "arrival".into(),
        });
        hub.send(msg(7));
        hub.send(GatewayEvent::Alert { kind: "backlog".into(), session_id: None, detail: String::new() });
        let seen: Vec<Arc<Stamped>> = (0..5).map(|_| rx.try_recv().unwrap()).collect();
        let who = |u: &Principal| seen.iter().filter(|e| e.visible_to(u)).map(|e| e.seq).collect::<Vec<_>>();
        // A new session's first message, before routing: admins only.
        assert_eq!(who(&admin), vec![1, 2, 3, 4, 5]);
        assert_eq!(who(&a01), vec![3, 4]);
        assert_eq!(who(&a02), Vec::<u64>::new());
        assert_eq!(who(&lead), vec![2, 3, 4, 5]);
        assert_eq!(who(&other_lead), vec![5]);
    }

    #[test]
    fn resume_replays_what_was_missed_or_reports_a_gap() {
        let hub = EventHub::new();
        for i in 0..10 {
            hub.send(msg(i));
        }
        let admin = user("boss", Role::Admin, &[]);
        let sub = hub.resume_for(&admin, 7);
        assert_eq!(sub.last, 10);
        assert_eq!(sub.replay.unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), vec![8, 9, 10]);
        assert!(hub.resume_for(&admin, 10).replay.unwrap().is_empty());
        for i in 0..RING as i64 {
            hub.send(msg(i));
        }
        assert_eq!(hub.resume_for(&admin, 3).replay.unwrap_err(), Gap { oldest: 11 });
        assert_eq!(hub.resume_for(&admin, 10).replay.unwrap().len(), RING);
    }

    #[test]
    fn each_event_reaches_only_the_clients_that_may_see_it() {
        let hub = EventHub::new();
        hub.send(GatewayEvent::Assigned {
            session_id: 1,
            agent: "a1".into(),
            group: "pre".into(),
            trigger: "arrival".into(),
        });
        hub.send(GatewayEvent::Assigned {
            session_id: 2,
            agent: "a2".into(),
            group: "after".into(),
            trigger: "transfer".into(),
        });
        let mut a1 = hub.resume_for(&user("a1", Role::Agent, &["pre"]), u64::MAX);
        let mut a1_tab = hub.resume_for(&user("a1", Role::Agent, &["pre"]), u64::MAX);
        let mut a2 = hub.resume_for(&user("a2", Role::Agent, &["after"]), u64::MAX);
        let mut lead = hub.resume_for(&user("l1", Role::Lead, &["pre"]), u64::MAX);
        let mut admin = hub.resume_for(&user("boss", Role::Admin, &[]), u64::MAX);
        hub.send(msg(1));
        hub.send(msg(2));
        hub.send(GatewayEvent::Channel {
            platform: "douyin".into(),
            shop: "dy".into(),
            channel: "push".into(),
            status: "up".into(),
            state: "connected".into(),
        });
        let drain = |s: &mut Subscription| {
            let mut got = Vec::new();
            while let Ok(e) = s.rx.try_recv() {
                got.push((e.seq, e.event.session_id()));
            }
            got
        };
        assert_eq!(drain(&mut a1), vec![(3, Some(1))]);
        assert_eq!(drain(&mut a1_tab), vec![(3, Some(1))], "every tab of the agent");
        assert_eq!(drain(&mut a2), vec![(4, Some(2))]);
        assert_eq!(drain(&mut lead), vec![(3, Some(1)), (5, None)], "their group and shop-wide events");
        assert_eq!(drain(&mut admin), vec![(3, Some(1)), (4, Some(2)), (5, None)]);
        assert_eq!(hub.clients(), 5);
        hub.unsubscribe(a1.id);
        assert_eq!(hub.clients(), 4);
    }

    #[test]
    fn a_client_that_falls_behind_is_dropped_and_resumes_without_a_gap() {
        let hub = EventHub::new();
        let admin = user("boss", Role::Admin, &[]);
        let mut sub = hub.resume_for(&admin, u64::MAX);
        for i in 0..(CLIENT_QUEUE + 10) as i64 {
            hub.send(msg(i));
        }
        let mut seen = 0;
        while let Ok(e) = sub.rx.try_recv() {
            seen = e.seq;
        }
        assert_eq!(seen, CLIENT_QUEUE as u64);
        assert!(sub.rx.is_closed() || sub.rx.try_recv().is_err(), "no longer fed");
        assert_eq!(hub.clients(), 0, "dropped from delivery");
        let again = hub.resume_for(&admin, seen);
        assert_eq!(again.replay.unwrap().len(), 10, "the rest comes from the ring");
    }

    #[test]
    fn stamped_events_serialize_flat() {
        let hub = EventHub::new();
        let mut rx = hub.subscribe();
        hub.send(GatewayEvent::Delivery { session_id: 3, message_id: 4, state: "sent".into(), detail: None });
        let v = serde_json::to_value(&*rx.try_recv().unwrap()).unwrap();
        assert_eq!(v["seq"], 1);
        assert_eq!(v["type"], "delivery");
        assert_eq!(v["state"], "sent");
        assert!(v.get("audience").is_none());
    }

    #[test]
    fn in_a_cluster_events_are_numbered_by_the_stream_and_a_repeat_is_ignored() {
        let hub = EventHub::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        hub.go_global(tx);
        assert!(hub.is_global());
        // Sent events go to the stream, not to the clients: numbered when they come back.
        assert_eq!(hub.send(msg(1)), 0);
        assert_eq!(rx.try_recv().unwrap(), msg(1));
        assert_eq!(hub.last_seq(), 0);
        let admin = user("root", Role::Admin, &[]);
        let mut sub = hub.resume_for(&admin, 0);
        hub.ingest(7, 100, msg(1));
        hub.ingest(7, 100, msg(1)); // the consumer redelivered it
        hub.ingest(5, 90, msg(2)); // older than what was seen
        hub.skip(8); // a number this node could not read
        hub.ingest(9, 110, msg(3));
        let got: Vec<u64> = std::iter::from_fn(|| sub.rx.try_recv().ok()).map(|e| e.seq).collect();
        assert_eq!(got, [7, 9]);
        assert_eq!(hub.last_seq(), 9);
        // A client resuming after 7 gets 9 only.
        let again = hub.resume_for(&admin, 7);
        assert_eq!(again.replay.unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), [9]);
    }
}
