//! The team lead's dashboard (lead: their groups; admin: all).
//!
//! Live figures come from the open sessions and the routing engine; response figures from the
//! sessions opened in the last `dashboard.window_minutes`. Alerts fire at the thresholds of
//! `[dashboard]` (defaults from seeds/002: a wait over 3 minutes, more than 20 conversations
//! waiting for an answer, a first reply later than 30 s).

use std::collections::BTreeMap;
use std::sync::Arc;

use huiliu_domain::Principal;
use huiliu_domain::session::SessionState;
use huiliu_routing::AgentStatus;
use huiliu_store::Store;
use huiliu_store::blacklist::EntryState;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ServiceError;
use super::blacklist::Blacklist;
use super::routing::Routing;
use super::timeline::{GroupSeries, Point as TimelinePoint, Series as TimelineSeries};
use crate::metrics::Metrics;

/// `[dashboard]`: the lead dashboard's alarm thresholds (defaults from seeds/002, 飞鸽's
/// service standards).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    /// Alert when a conversation has waited longer than this (seconds). Default 180.
    pub wait_alert_s: u32,
    /// Alert when more conversations than this wait for an answer (shop-wide). Default 20.
    pub backlog_alert: u32,
    /// Alert when an assigned conversation has had no first reply for this long (seconds).
    /// Default 30.
    pub first_response_alert_s: u32,
    /// The window of the response figures (minutes). Default 1440 (today's last 24 hours).
    pub window_minutes: u32,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig { wait_alert_s: 180, backlog_alert: 20, first_response_alert_s: 30, window_minutes: 1440 }
    }
}

/// One group's row.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct GroupRow {
    pub id: String,
    pub name: String,
    /// Conversations waiting in the queue (incl. outside hours).
    pub queued: u32,
    /// The longest current wait among queued conversations (s).
    pub longest_wait_s: Option<i64>,
    /// Open conversations with buyer messages not yet answered.
    pub unanswered: u32,
    /// Members online or busy.
    pub online: u32,
    /// All members.
    pub members: u32,
    /// Sessions opened in the window.
    pub sessions: i64,
    /// Share of the window's sessions that got an answer (0–1).
    pub reply_rate: Option<f64>,
    /// Mean first response over the window (s).
    pub first_response_s: Option<f64>,
    /// Mean response over the window (s).
    pub response_s: Option<f64>,
}

/// One agent of the lead's groups.
#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardAgent {
    pub id: String,
    pub name: String,
    pub status: AgentStatus,
    /// Sessions being served.
    pub active: u32,
    /// 接待上限 in force.
    pub cap: u32,
    /// `active / cap` (0 when the cap is 0).
    pub load: f64,
    /// Which of the lead's groups the agent serves.
    pub groups: Vec<String>,
}

/// An alert over a threshold.
#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardAlert {
    /// `long_wait`, `first_response_late`, `backlog`, `channel_stopped` (a shop's long-lived
    /// channel stopped on what an operator must fix), or for a shop's platform authorization
    /// `reauthorize` (an operator must authorize the shop again) and `token_refresh_failing`
    /// (refreshes fail for now and are retried).
    pub kind: &'static str,
    pub group: Option<String>,
    pub session_id: Option<i64>,
    pub value: i64,
    pub threshold: i64,
    pub message: String,
}

/// The dashboard.
#[derive(Debug, Serialize, ToSchema)]
pub struct Figures {
    pub now: i64,
    pub thresholds: Thresholds,
    pub window_minutes: u32,
    pub groups: Vec<GroupRow>,
    pub agents: Vec<DashboardAgent>,
    /// Conversations waiting for an answer (the lead's groups; admin: all).
    pub unanswered: i64,
    pub alerts: Vec<DashboardAlert>,
    /// Blacklist proposals waiting for review.
    pub blacklist_pending: usize,
    /// Whether routing is configured.
    pub routing: bool,
}

/// The alert thresholds in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct Thresholds {
    pub wait_alert_s: u32,
    pub backlog_alert: u32,
    pub first_response_alert_s: u32,
}

/// Computes the dashboard.
#[derive(Debug)]
pub struct Dashboard {
    pub config: DashboardConfig,
    pub store: Store,
    pub routing: Option<Arc<Routing>>,
    pub blacklist: Arc<Blacklist>,
    pub metrics: Arc<Metrics>,
    /// Shops' token states.
    pub status: Arc<super::status::Status>,
    /// The per-minute samples of the day (`timeline.rs`).
    pub timeline: Arc<super::timeline::Timeline>,
}

impl Dashboard {
    /// Display names by id (shops, agents, groups, categories, platforms) from the running
    /// configuration: what reasons and lists are shown with.
    pub async fn names(&self) -> huiliu_routing::Names {
        let mut names = huiliu_routing::Names::with_platforms();
        names.shops = self.status.shop_names();
        if let Some(routing) = &self.routing {
            routing.with_config(|cfg| names.add_routing(cfg)).await;
        }
        names
    }

    /// The figures `me` may see.
    pub async fn figures(&self, me: &Principal) -> Result<Figures, ServiceError> {
        self.figures_with_window(me, i64::from(self.config.window_minutes)).await
    }

    /// The figures with response figures over the last `window_minutes`.
    pub(super) async fn figures_with_window(
        &self,
        me: &Principal,
        window_minutes: i64,
    ) -> Result<Figures, ServiceError> {
        let t = &self.config;
        let now = huiliu_domain::now_millis();
        let routing = match &self.routing {
            Some(r) => Some((r.config().await, r.state().await)),
            None => None,
        };
        let mut groups: BTreeMap<String, GroupRow> = BTreeMap::new();
        let mut agents = Vec::new();
        if let Some((config, state)) = &routing {
            for g in config.groups.iter().filter(|g| me.oversees(&g.id)) {
                let name = g.name.clone().unwrap_or_else(|| g.id.clone());
                groups.insert(g.id.clone(), GroupRow { id: g.id.clone(), name, ..Default::default() });
            }
            for a in &config.agents {
                let mine: Vec<String> = a.groups.keys().filter(|g| groups.contains_key(*g)).cloned().collect();
                if mine.is_empty() {
                    continue;
                }
                let live = state.agents.get(&a.id);
                let status = live.map_or(AgentStatus::Offline, |l| l.status);
                let on = matches!(status, AgentStatus::Online | AgentStatus::Busy);
                for g in &mine {
                    let row = groups.get_mut(g).expect("filtered above");
                    row.members += 1;
                    row.online += u32::from(on);
                }
                let cap = live.and_then(|l| l.max_sessions).unwrap_or(a.max_sessions);
                let active = live.map_or(0, |l| l.active);
                let load = if cap == 0 { 0.0 } else { f64::from(active) / f64::from(cap) };
                let name = a.name.clone().unwrap_or_else(|| a.id.clone());
                agents.push(DashboardAgent { id: a.id.clone(), name, status, active, cap, load, groups: mine });
            }
        }
        let (backlog, mut alerts) = self.live(me, now, &mut groups).await?;
        if backlog > i64::from(t.backlog_alert) {
            alerts.push(DashboardAlert {
                kind: "backlog",
                group: None,
                session_id: None,
                value: backlog,
                threshold: i64::from(t.backlog_alert),
                message: format!("{backlog} 个会话等待回复（阈值 {}）", t.backlog_alert),
            });
        }
        for (channel, state) in self.status.channel_states() {
            if state.state == super::status::ChannelState::Stopped {
                let message = format!("通道 {channel} 已停止，需要处理：{}", state.detail);
                alerts.push(DashboardAlert {
                    kind: "channel_stopped",
                    group: None,
                    session_id: None,
                    value: 0,
                    threshold: 0,
                    message,
                });
            }
        }
        for (shop, token) in self.status.tokens() {
            let (kind, message) = match token.state {
                super::status::TokenState::Ok => continue,
                super::status::TokenState::ReauthorizeNeeded => {
                    ("reauthorize", format!("店铺 {shop} 的平台授权已失效，需要重新授权：{}", token.detail))
                }
                super::status::TokenState::TemporaryFailure => {
                    ("token_refresh_failing", format!("店铺 {shop} 的令牌刷新暂时失败，稍后重试：{}", token.detail))
                }
            };
            alerts.push(DashboardAlert { kind, group: None, session_id: None, value: 0, threshold: 0, message });
        }
        let since = now - window_minutes * 60_000;
        for stat in self.store.response_stats(since).await? {
            if let Some(row) = groups.get_mut(&stat.group) {
                row.sessions = stat.sessions;
                row.reply_rate = (stat.sessions > 0).then(|| stat.answered as f64 / stat.sessions as f64);
                row.first_response_s = stat.first_response_ms.map(|v| v / 1000.0);
                row.response_s = stat.response_ms.map(|v| v / 1000.0);
            }
        }
        let pending = self.blacklist.list(Some(EntryState::Proposed)).await.map(|l| l.len()).unwrap_or(0);
        self.metrics.backlog.set(backlog);
        Ok(Figures {
            now,
            thresholds: Thresholds {
                wait_alert_s: t.wait_alert_s,
                backlog_alert: t.backlog_alert,
                first_response_alert_s: t.first_response_alert_s,
            },
            window_minutes: u32::try_from(window_minutes).unwrap_or(t.window_minutes),
            groups: groups.into_values().collect(),
            agents,
            unanswered: backlog,
            alerts,
            blacklist_pending: pending,
            routing: routing.is_some(),
        })
    }

    /// The open sessions' figures: the backlog, queue and first-response alerts.
    async fn live(
        &self,
        me: &Principal,
        now: i64,
        groups: &mut BTreeMap<String, GroupRow>,
    ) -> Result<(i64, Vec<DashboardAlert>), ServiceError> {
        let t = &self.config;
        let mut alerts = Vec::new();
        let mut backlog = 0i64;
        for s in self.store.open_sessions().await? {
            let Some(group) = s.skill_group.clone() else {
                if me.is_admin() && s.unread > 0 {
                    backlog += 1;
                }
                continue;
            };
            let Some(row) = groups.get_mut(&group) else { continue };
            if s.unread > 0 {
                row.unanswered += 1;
                backlog += 1;
            }
            match s.state {
                SessionState::Queued | SessionState::OffHours => {
                    row.queued += 1;
                    let wait = (now - s.last_inbound_at.unwrap_or(s.opened_at)) / 1000;
                    row.longest_wait_s = Some(row.longest_wait_s.map_or(wait, |w: i64| w.max(wait)));
                    if s.state == SessionState::Queued && wait > i64::from(t.wait_alert_s) {
                        alerts.push(DashboardAlert {
                            kind: "long_wait",
                            group: Some(group.clone()),
                            session_id: Some(s.id),
                            value: wait,
                            threshold: i64::from(t.wait_alert_s),
                            message: format!("会话 {} 已等待 {} 秒（阈值 {} 秒）", s.id, wait, t.wait_alert_s),
                        });
                    }
                }
                SessionState::Assigned if s.first_response_at.is_none() => {
                    let since = (now - s.assigned_at.unwrap_or(s.opened_at)) / 1000;
                    if since > i64::from(t.first_response_alert_s) {
                        let agent = s.agent.as_deref().unwrap_or("?");
                        alerts.push(DashboardAlert {
                            kind: "first_response_late",
                            group: Some(group.clone()),
                            session_id: Some(s.id),
                            value: since,
                            threshold: i64::from(t.first_response_alert_s),
                            message: format!(
                                "会话 {} 分配给 {agent} 已 {since} 秒未首次回复（阈值 {} 秒）",
                                s.id, t.first_response_alert_s
                            ),
                        });
                    }
                }
                _ => {}
            }
        }
        Ok((backlog, alerts))
    }
}

impl Dashboard {
    /// Every group's point now (queue live, responses over the last 15 minutes).
    async fn points_now(
        &self,
        me: &Principal,
        now: i64,
    ) -> Result<BTreeMap<String, (String, TimelinePoint)>, ServiceError> {
        let figures = self.figures_with_window(me, super::timeline::RESPONSE_WINDOW_MIN).await?;
        Ok(figures
            .groups
            .into_iter()
            .map(|g| {
                let point = TimelinePoint {
                    at: now,
                    queued: g.queued,
                    longest_wait_s: g.longest_wait_s,
                    first_response_s: g.first_response_s,
                    reply_rate: g.reply_rate,
                };
                (g.id, (g.name, point))
            })
            .collect())
    }

    /// Takes one sample of every group (the sampler calls it each minute).
    pub async fn sample(&self, now: i64) -> Result<(), ServiceError> {
        let points = self.points_now(&Principal::operator(), now).await?;
        let groups = points.into_iter().map(|(id, (_, p))| (id, p)).collect();
        self.timeline.record(now, groups);
        Ok(())
    }

    /// The last `minutes` of samples of the groups `me` oversees, and a point taken now.
    pub async fn series(&self, me: &Principal, minutes: u32) -> Result<TimelineSeries, ServiceError> {
        let now = huiliu_domain::now_millis();
        let since = now - i64::from(minutes) * 60_000;
        let live = self.points_now(me, now).await?;
        let groups = live
            .into_iter()
            .map(|(id, (name, now_point))| {
                let mut points = self.timeline.points(&id, since);
                points.push(now_point);
                GroupSeries { id, name, points }
            })
            .collect();
        Ok(TimelineSeries { now, step_minutes: 1, groups })
    }
}

/// Samples every minute, forever (spawned with the gateway's background work).
pub async fn sample_every_minute(dashboard: Arc<Dashboard>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        if let Err(e) = dashboard.sample(huiliu_domain::now_millis()).await {
            tracing::warn!("dashboard sample failed: {e}");
        }
    }
}
