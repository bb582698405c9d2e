//! `GET /api/v1/dashboard`: the team lead's view (lead: their groups; admin: all).
//!
//! Live figures come from the open sessions and the router; response figures from the
//! sessions opened in the last `dashboard.window_minutes`. Alerts fire at the thresholds of
//! `[dashboard]` (defaults from seeds/002: a wait over 3 minutes, more than 20 conversations
//! waiting for an answer, a first reply later than 30 s).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Json;
use serde::Serialize;
use serde_json::json;

use super::v1::{ApiError, caller, require};
use crate::Gateway;
use huiliu_domain::Role;
use huiliu_domain::session::SessionState;
use huiliu_store::blacklist::EntryState;

/// One group's row.
#[derive(Debug, Default, Serialize)]
struct GroupRow {
    id: String,
    name: String,
    /// Conversations waiting in the queue (incl. outside hours).
    queued: u32,
    /// The longest current wait among queued conversations (s).
    longest_wait_s: Option<i64>,
    /// Open conversations with buyer messages not yet answered.
    unanswered: u32,
    /// Members online or busy / all members.
    online: u32,
    members: u32,
    /// Over the window.
    sessions: i64,
    reply_rate: Option<f64>,
    first_response_s: Option<f64>,
    response_s: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Alert {
    kind: &'static str,
    group: Option<String>,
    session_id: Option<i64>,
    value: i64,
    threshold: i64,
    message: String,
}

pub(super) async fn dashboard(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let me = caller(&gw, &headers).await?;
    require(&me, Role::Lead)?;
    let t = &gw.config.dashboard;
    let now = huiliu_domain::now_millis();
    let routing = match &gw.flow.routing {
        Some(d) => Some((d.config().await, d.state().await)),
        None => None,
    };
    let mut groups: BTreeMap<String, GroupRow> = BTreeMap::new();
    let mut agents = Vec::new();
    if let Some((config, state)) = &routing {
        for g in config.groups.iter().filter(|g| me.oversees(&g.id)) {
            groups.insert(
                g.id.clone(),
                GroupRow {
                    id: g.id.clone(),
                    name: g.name.clone().unwrap_or_else(|| g.id.clone()),
                    ..Default::default()
                },
            );
        }
        for a in &config.agents {
            let mine: Vec<&String> = a.groups.keys().filter(|g| groups.contains_key(*g)).collect();
            if mine.is_empty() {
                continue;
            }
            let live = state.agents.get(&a.id);
            let status = live.map_or(huiliu_routing::AgentStatus::Offline, |l| l.status);
            let on = matches!(status, huiliu_routing::AgentStatus::Online | huiliu_routing::AgentStatus::Busy);
            for g in &mine {
                let row = groups.get_mut(*g).expect("filtered above");
                row.members += 1;
                row.online += u32::from(on);
            }
            let cap = live.and_then(|l| l.max_sessions).unwrap_or(a.max_sessions);
            let active = live.map_or(0, |l| l.active);
            agents.push(json!({
                "id": a.id, "name": a.name.clone().unwrap_or_else(|| a.id.clone()), "status": status,
                "active": active, "cap": cap, "load": if cap == 0 { 0.0 } else { f64::from(active) / f64::from(cap) },
                "groups": mine,
            }));
        }
    }
    let mut alerts = Vec::new();
    let mut backlog = 0i64;
    for s in gw.store.open_sessions().await? {
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
                    alerts.push(Alert {
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
                    alerts.push(Alert {
                        kind: "first_response_late",
                        group: Some(group.clone()),
                        session_id: Some(s.id),
                        value: since,
                        threshold: i64::from(t.first_response_alert_s),
                        message: format!(
                            "会话 {} 分配给 {} 已 {} 秒未首次回复（阈值 {} 秒）",
                            s.id,
                            s.agent.as_deref().unwrap_or("?"),
                            since,
                            t.first_response_alert_s
                        ),
                    });
                }
            }
            _ => {}
        }
    }
    if backlog > i64::from(t.backlog_alert) {
        alerts.push(Alert {
            kind: "backlog",
            group: None,
            session_id: None,
            value: backlog,
            threshold: i64::from(t.backlog_alert),
            message: format!("{backlog} 个会话等待回复（阈值 {}）", t.backlog_alert),
        });
    }
    let since = now - i64::from(t.window_minutes) * 60_000;
    for stat in gw.store.response_stats(since).await? {
        if let Some(row) = groups.get_mut(&stat.group) {
            row.sessions = stat.sessions;
            row.reply_rate = (stat.sessions > 0).then(|| stat.answered as f64 / stat.sessions as f64);
            row.first_response_s = stat.first_response_ms.map(|v| v / 1000.0);
            row.response_s = stat.response_ms.map(|v| v / 1000.0);
        }
    }
    let pending = gw.blacklist.list(Some(EntryState::Proposed)).await.map(|l| l.len()).unwrap_or(0);
    gw.metrics.backlog.set(backlog);
    Ok(Json(json!({
        "now": now,
        "thresholds": {"wait_alert_s": t.wait_alert_s, "backlog_alert": t.backlog_alert, "first_response_alert_s": t.first_response_alert_s},
        "window_minutes": t.window_minutes,
        "groups": groups.into_values().collect::<Vec<_>>(),
        "agents": agents,
        "unanswered": backlog,
        "alerts": alerts,
        "blacklist_pending": pending,
        "routing": routing.is_some(),
    })))
}
