// 汇流 workbench: plain JavaScript against /api/v1 and its event stream. Every text from a
// buyer or a platform is put in the page with textContent, never as HTML.
"use strict";

const PLATFORM = { taobao: "淘宝", douyin: "抖音", jd: "京东", wechat_shop: "微信小店" };
const STATE = { queued: "排队中", assigned: "接待中", bot: "机器人", off_hours: "非工作时间", closed: "已结束" };
const DELIVERY = { pending: "发送中", sent: "已送达", failed: "发送失败" };
const STATUS = { online: "在线", busy: "忙碌", away: "小休", offline: "离线" };
const CHANNEL = { connected: "已连接", connecting: "连接中", backing_off: "重连中", stopped: "已停止" };
const TOKEN = { ok: "授权正常", temporary_failure: "令牌刷新暂时失败", reauthorize_needed: "需要重新授权" };
const ROLE = { agent: "客服", lead: "组长", admin: "管理员" };

const $ = (id) => document.getElementById(id);
const st = {
  token: sessionStorage.getItem("huiliu.token"),
  me: null,
  sessions: [],
  current: null,      // session id
  detail: null,       // GET /sessions/{id}
  seq: 0,             // last event seq seen, for resume
  ws: null,
  retry: 500,
  view: "desk",
  recent: [],
  search: null,       // { params, offset } while the list shows search results
};

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

async function api(method, path, body) {
  const res = await fetch("/api/v1" + path, {
    method,
    headers: Object.assign({ "content-type": "application/json" }, st.token ? { authorization: "Bearer " + st.token } : {}),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await res.json(); } catch (_) { /* empty body */ }
  if (res.status === 401 && path !== "/auth/login") { logout(true); }
  return { status: res.status, ok: res.ok, data: data || {} };
}

function since(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return s + "秒";
  if (s < 3600) return Math.floor(s / 60) + "分" + (s % 60) + "秒";
  return Math.floor(s / 3600) + "小时" + Math.floor((s % 3600) / 60) + "分";
}
function clock(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString("zh-CN", { hour12: false });
}
function yuan(fen) { return fen === null || fen === undefined ? "" : "¥" + (fen / 100).toFixed(2); }

// ---------------------------------------------------------------- words (GET /directory)
// Display names by id and the zh-CN catalog of reason and error codes, from the daemon: the
// same catalog `huiliu route explain` prints with (gateway/routing/src/reason.rs).

// Before login the directory cannot be read: the login page's own refusals are known here.
const dict = { names: { shops: {}, agents: {}, groups: {}, categories: {}, platforms: {} }, reasons: {},
  errors: { bad_credentials: "账号或密码错误", too_many_attempts: "尝试次数过多，请稍后再试", invalid_body: "请填写账号和密码" } };
async function loadDirectory() {
  const r = await api("GET", "/directory");
  if (r.ok) { dict.names = r.data.names; dict.reasons = r.data.reasons; Object.assign(dict.errors, r.data.errors); }
}
const TABLE_OF = { agent: "agents", next: "agents", last: "agents", group: "groups", duty: "groups", shop: "shops", platform: "platforms", category: "categories" };
function nameOf(table, id) {
  if (id === null || id === undefined || id === "") return "";
  return (dict.names[table] && dict.names[table][id]) || (table === "platforms" && PLATFORM[id]) || id;
}
function showParam(key, v) {
  const base = { want_shops: "shop", want_platforms: "platform", want_categories: "category" }[key] || key.replace(/s+$/, "");
  if (String(v).includes("|")) return String(v).split("|").map(x => showParam(base, x)).join("、");
  return TABLE_OF[base] ? nameOf(TABLE_OF[base], v) : v;
}
// A reason {code, params, inner} in Chinese; an unknown code shows as itself.
function renderReason(r) {
  if (!r || !r.code) return "";
  const p = r.params || {}, t = dict.reasons[r.code];
  if (!t) return (r.code + " " + Object.entries(p).map(([k, v]) => k + "=" + v).join(" ")).trim();
  return t.replace(/\{([a-z_]+)\}/g, (m, k) => {
    if (k === "inner") return r.inner ? renderReason(r.inner) : "";
    if (k === "prefix") return p.prefix ? renderReason({ code: p.prefix, params: p }) : "";
    return k in p ? showParam(k, p[k]) : m;
  });
}
// An API refusal {code, message} in Chinese when the code is known.
function errText(data, fallback) {
  return (data && dict.errors[data.code]) || (data && data.message) || fallback || "操作失败";
}

// ---------------------------------------------------------------- login

function showLogin(message) {
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("login-user").focus();
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("login-submit").disabled = true;
  const r = await api("POST", "/auth/login", { user: $("login-user").value.trim(), password: $("login-password").value });
  $("login-submit").disabled = false;
  if (!r.ok) { $("login-error").textContent = errText(r.data, "登录失败"); return; }
  st.token = r.data.token;
  sessionStorage.setItem("huiliu.token", st.token);
  $("login-password").value = "";
  start();
});

async function logout(expired) {
  if (!expired && st.token) { await api("POST", "/auth/logout"); }
  st.token = null;
  sessionStorage.removeItem("huiliu.token");
  if (st.ws) { st.ws.onclose = null; st.ws.close(); st.ws = null; }
  showLogin(expired ? "登录已过期，请重新登录" : "");
}
$("logout").addEventListener("click", () => logout(false));

$("btn-password").addEventListener("click", () => {
  $("pw-current").value = ""; $("pw-new").value = ""; $("pw-error").textContent = "";
  $("dlg-password").showModal();
});
$("form-password").addEventListener("submit", async (e) => {
  if (e.submitter && e.submitter.value === "cancel") return;
  e.preventDefault();
  const r = await api("POST", "/me/password", { current_password: $("pw-current").value, new_password: $("pw-new").value });
  if (!r.ok) { $("pw-error").textContent = errText(r.data); return; }
  $("dlg-password").close();
  $("reply-note").textContent = "密码已修改";
});

async function start() {
  const r = await api("GET", "/me");
  if (!r.ok) return showLogin();
  st.me = r.data.user;
  st.seq = r.data.event_seq || 0;
  await loadDirectory();
  $("login").hidden = true;
  $("app").hidden = false;
  $("me").textContent = st.me.name + "（" + (ROLE[st.me.role] || st.me.role) + "）";
  $("tab-dash").hidden = st.me.role === "agent";
  $("tab-kb").hidden = st.me.role === "agent";
  $("status").value = (r.data.agent && r.data.agent.status) || "offline";
  $("status").disabled = !r.data.agent;
  connect();
  await loadSessions();
  await loadQuickTemplates();
  show(st.view);
}

$("status").addEventListener("change", async () => {
  const r = await api("POST", "/agents/" + encodeURIComponent(st.me.id) + "/status", { status: $("status").value });
  if (!r.ok) alert(errText(r.data));
});

// ---------------------------------------------------------------- event stream

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const url = proto + "//" + location.host + "/api/v1/events?token=" + encodeURIComponent(st.token) + "&since=" + st.seq;
  const ws = new WebSocket(url);
  st.ws = ws;
  ws.onopen = () => { st.retry = 500; setConn("ok", "● 实时"); };
  ws.onmessage = (m) => onEvent(JSON.parse(m.data));
  ws.onclose = () => {
    setConn("bad", "● 重连中");
    if (!st.token) return;
    setTimeout(connect, st.retry);
    st.retry = Math.min(st.retry * 2, 10000);
  };
}
// The server closed the stream because the token stopped working: back to the login, saying why.
const CLOSED = { revoked: "登录已失效（已退出或密码已重置），请重新登录", expired: "登录已过期，请重新登录",
  user_disabled: "账号已被停用，请联系管理员", user_removed: "账号已被删除，请联系管理员" };
function streamClosed(reason) {
  if (st.ws) { st.ws.onclose = null; }
  st.token = null;
  sessionStorage.removeItem("huiliu.token");
  showLogin(CLOSED[reason] || "连接已关闭，请重新登录");
}
function setConn(cls, text) { const c = $("conn"); c.className = "conn " + cls; c.textContent = text; }

let reloadTimer = null;
function reloadSoon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => { loadSessions(); if (st.view === "dash") loadDashboard(); }, 150);
}

// ---------------------------------------------------------------- alerts
// Sound, desktop notification and a count in the tab title for: a new conversation given to
// me, a transfer to me, my first reply overdue, and (leads) a dashboard alarm. Each switch is
// kept per user in this browser (localStorage), on by default except desktop notifications
// (the browser asks for permission when they are switched on).

const ALERT_DEFAULTS = { sound: true, notify: false, title: true, new: true, transfer: true, overdue: true, dashboard: true };
const ALERT_KEYS = Object.keys(ALERT_DEFAULTS);
function alertPrefs() {
  try {
    return Object.assign({}, ALERT_DEFAULTS, JSON.parse(localStorage.getItem("huiliu.alerts." + (st.me && st.me.id)) || "{}"));
  } catch (_) { return Object.assign({}, ALERT_DEFAULTS); }
}
function saveAlertPrefs(p) { localStorage.setItem("huiliu.alerts." + st.me.id, JSON.stringify(p)); }
const BASE_TITLE = document.title;
let unseenAlerts = 0;
function setTitleCount() {
  const show = alertPrefs().title && unseenAlerts > 0;
  document.title = show ? "(" + unseenAlerts + ") " + BASE_TITLE : BASE_TITLE;
}
function seenAlerts() { unseenAlerts = 0; setTitleCount(); $("toast").hidden = true; }
let audio = null;
function beep(urgent) {
  try {
    audio = audio || new AudioContext();
    const now = audio.currentTime;
    for (const [i, f] of (urgent ? [880, 660, 880] : [660, 880]).entries()) {
      const o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = f;
      g.gain.setValueAtTime(0.15, now + i * 0.18);
      g.gain.exponentialRampToValueAtTime(0.001, now + i * 0.18 + 0.16);
      o.connect(g).connect(audio.destination);
      o.start(now + i * 0.18); o.stop(now + i * 0.18 + 0.17);
    }
  } catch (_) { /* no audio in this browser */ }
}
// kind: new | transfer | overdue | dashboard.
function raiseAlert(kind, text, sessionId) {
  const p = alertPrefs();
  if (!p[kind]) return;
  unseenAlerts += 1;
  setTitleCount();
  const t = $("toast");
  t.className = "toast " + kind;
  t.setAttribute("data-kind", kind);
  t.textContent = "【提醒】" + text;   // no emoji: many office PCs lack an emoji font
  t.hidden = false;
  t.onclick = () => { seenAlerts(); if (sessionId) openSession(sessionId); };
  if (p.sound) beep(kind === "overdue" || kind === "dashboard");
  if (p.notify && "Notification" in window && Notification.permission === "granted") {
    const n = new Notification("汇流", { body: text, tag: kind + ":" + (sessionId || "") });
    n.onclick = () => { window.focus(); if (sessionId) openSession(sessionId); n.close(); };
  }
}
document.addEventListener("visibilitychange", () => { if (!document.hidden && st.current) setTitleCount(); });
function alertFor(e) {
  const me = st.me && st.me.id;
  if (e.type === "assigned" && e.agent === me) {
    if (e.trigger === "transfer") raiseAlert("transfer", "会话 #" + e.session_id + " 转接给你了", e.session_id);
    else raiseAlert("new", "新会话 #" + e.session_id + "（" + nameOf("groups", e.group) + "）", e.session_id);
  } else if (e.type === "alert" && e.kind === "first_response_overdue" && e.detail === me) {
    raiseAlert("overdue", "会话 #" + e.session_id + " 首次回复已超时，请尽快回复", e.session_id);
  } else if (e.type === "alert" && st.me && st.me.role !== "agent" && e.kind !== "first_response_overdue") {
    raiseAlert("dashboard", "看板告警：" + (e.detail || e.kind), e.session_id);
  } else if (e.type === "alert" && st.me && st.me.role !== "agent") {
    raiseAlert("dashboard", "看板告警：会话 #" + e.session_id + " 首次回复超时（" + nameOf("agents", e.detail) + "）", e.session_id);
  }
}
$("btn-alerts").addEventListener("click", () => {
  const p = alertPrefs();
  for (const k of ALERT_KEYS) $("al-" + k).checked = !!p[k];
  $("al-dashboard-row").hidden = st.me.role === "agent";
  $("dlg-alerts").showModal();
});
$("al-notify").addEventListener("change", () => {
  if ($("al-notify").checked && "Notification" in window && Notification.permission === "default") Notification.requestPermission();
});
$("form-alerts").addEventListener("submit", (e) => {
  if (e.submitter && e.submitter.value === "cancel") return;
  const p = {};
  for (const k of ALERT_KEYS) p[k] = $("al-" + k).checked;
  saveAlertPrefs(p);
  setTitleCount();
});

function onEvent(e) {
  st.recent.push(e);            // the last events, for support (st.recent in the console)
  if (st.recent.length > 50) st.recent.shift();
  if (e.type === "hello") { return; }
  if (e.type === "closed") { streamClosed(e.reason); return; }
  if (e.type === "resync") { st.seq = e.seq; reloadSoon(); if (st.current) openSession(st.current, true); return; }
  if (e.seq) st.seq = e.seq;
  alertFor(e);
  switch (e.type) {
    case "message_in":
    case "assigned":
    case "unassigned":
    case "queued":
    case "closed":
      reloadSoon();
      if (e.session_id === st.current) refreshMessages();
      break;
    case "message_out":
    case "delivery":
      if (e.session_id === st.current) refreshMessages();
      reloadSoon();
      break;
    case "agent_status":
      if (e.agent === st.me.id) $("status").value = e.status;
      if (st.view === "dash") reloadSoon();
      break;
    case "alert":
      if (st.view === "dash") reloadSoon();
      break;
  }
}

// ---------------------------------------------------------------- session list

async function loadSessions() {
  if (st.search) return runSearch(false);
  const r = await api("GET", "/sessions?open=true&limit=200");
  if (!r.ok) return;
  st.sessions = r.data.sessions;
  st.sessions.sort((a, b) => (b.unread > 0) - (a.unread > 0) || b.last_message_at - a.last_message_at);
  renderList();
}

// ---------------------------------------------------------------- search (GET /sessions filters)
// By nick, order number or phone tail (the server searches masked text only), platform, state
// and the day a conversation came in, 50 a page; closed conversations included.

const PAGE = 50;
function searchParams() {
  const p = new URLSearchParams();
  const text = $("q-text").value.trim();
  if (text) p.set($("q-kind").value, text);
  if ($("q-platform").value) p.set("platform", $("q-platform").value);
  if ($("q-state").value) p.set("state", $("q-state").value);
  if ($("q-date").value) {
    const from = new Date($("q-date").value + "T00:00:00+08:00").getTime();   // a Beijing day
    p.set("from", from); p.set("to", from + 86400000);
  }
  return p;
}
async function runSearch(more) {
  const p = new URLSearchParams(st.search.params);
  p.set("limit", PAGE);
  p.set("offset", more ? st.search.offset + PAGE : 0);
  const r = await api("GET", "/sessions?" + p.toString());
  if (!r.ok) { $("list-title").textContent = "搜索失败：" + errText(r.data); return; }
  st.search.offset = Number(p.get("offset"));
  st.sessions = more ? st.sessions.concat(r.data.sessions) : r.data.sessions;
  $("list-title").textContent = "搜索结果";
  $("q-clear").hidden = false;
  $("q-more").hidden = r.data.sessions.length < PAGE;
  renderList();
}
$("search").addEventListener("submit", (e) => {
  e.preventDefault();
  const params = searchParams();
  if (![...params.keys()].length) { clearSearch(); return; }
  st.search = { params: params.toString(), offset: 0 };
  runSearch(false);
});
function clearSearch() {
  st.search = null;
  $("q-text").value = ""; $("q-platform").value = ""; $("q-state").value = ""; $("q-date").value = "";
  $("list-title").textContent = "会话";
  $("q-clear").hidden = true; $("q-more").hidden = true;
  loadSessions();
}
$("q-clear").addEventListener("click", clearSearch);
$("q-more").addEventListener("click", () => runSearch(true));

function renderList() {
  const ul = $("sessions");
  ul.replaceChildren(...st.sessions.map(row => {
    const s = row, c = row.customer || {};
    const waitMs = row.waiting_ms === null ? null : Date.now() - (s.last_inbound_at || s.opened_at);
    const late = waitMs !== null && waitMs > 60000;
    return h("li", { class: s.id === st.current ? "active" : "", "data-session": s.id, onclick: () => openSession(s.id) },
      h("span", { class: "badge " + s.platform }, PLATFORM[s.platform] || s.platform),
      h("span", { class: "nick" }, c.nick || c.id, " ", c.vip_level > 0 ? h("span", { class: "badge vip" }, "VIP" + c.vip_level) : null,
        s.state !== "assigned" ? h("span", { class: "badge state" }, STATE[s.state] || s.state) : null),
      h("span", {}, s.unread > 0 ? h("span", { class: "badge unread", title: "未读" }, s.unread) : null),
      h("span", { class: "preview" }, row.last_message ? row.last_message.text : ""),
      h("span", { class: "wait" + (late ? " late" : ""), "data-wait-from": waitMs === null ? "" : (s.last_inbound_at || s.opened_at) },
        waitMs === null ? "" : "等待 " + since(waitMs)));
  }));
  $("count").textContent = st.sessions.length ? "(" + st.sessions.length + ")" : "";
  $("no-sessions").hidden = st.sessions.length > 0;
}

setInterval(() => {
  for (const el of document.querySelectorAll("[data-wait-from]")) {
    const from = Number(el.getAttribute("data-wait-from"));
    if (!from) continue;
    const ms = Date.now() - from;
    el.textContent = "等待 " + since(ms);
    el.classList.toggle("late", ms > 60000);
  }
}, 1000);

// ---------------------------------------------------------------- chat

async function openSession(id, keepScroll) {
  if (st.current !== id) seenAlerts();
  st.current = id;
  renderList();
  const r = await api("GET", "/sessions/" + id);
  if (!r.ok) { $("chat-empty").textContent = errText(r.data); return; }
  st.detail = r.data;
  $("chat-empty").hidden = true;
  $("chat-main").hidden = false;
  const s = r.data.session, c = r.data.customer || {};
  $("chat-title").replaceChildren(h("span", { class: "badge " + s.platform }, PLATFORM[s.platform] || s.platform), " ",
    c.nick || ("买家 " + c.id), " · 会话 #" + s.id, " · ", STATE[s.state] || s.state, s.agent ? " · " + nameOf("agents", s.agent) : "");
  const closed = s.state === "closed";
  for (const b of ["btn-send", "btn-transfer", "btn-close"]) $(b).disabled = closed;
  renderMessages(r.data.messages, keepScroll);
  renderPending();
  renderCustomer(r.data);
  loadQuick(id);
  loadSuggestions(id);
}

async function refreshMessages() {
  if (!st.current) return;
  const r = await api("GET", "/sessions/" + st.current + "/messages?limit=200");
  if (r.ok) renderMessages(r.data.messages, false);
}

// A buyer's picture as a thumbnail that opens large; product and order cards with their ids
// (an order card also shows what the order events say of it: stage and amount).
function renderContent(el) {
  switch (el.type) {
    case "text": return h("span", {}, el.text);
    case "image": return h("img", { src: el.url, alt: el.fallback, loading: "lazy", class: "thumb", title: "点击查看大图",
      onclick: () => { $("lightbox-img").src = el.url; $("lightbox-img").alt = el.fallback; $("dlg-image").showModal(); } });
    case "product": return h("div", { class: "card product", "data-product": el.product_id }, h("b", {}, "商品"),
      el.title ? h("div", {}, el.title) : null, h("div", { class: "id" }, "商品ID " + el.product_id),
      el.url ? h("div", {}, h("a", { href: el.url, target: "_blank", rel: "noopener noreferrer" }, "查看商品")) : null);
    case "order": {
      const t = ((st.detail && st.detail.trades) || []).find(x => x.order_id === el.order_id);
      return h("div", { class: "card order", "data-order": el.order_id }, h("b", {}, "订单"),
        h("div", { class: "id" }, "订单号 " + el.order_id),
        t ? h("div", { class: "sub" }, [t.stage, yuan(t.amount_fen)].filter(Boolean).join(" · ")) : null);
    }
    case "emoji": return h("span", { title: el.code }, el.fallback);
    default: return h("span", {}, el.fallback || "");
  }
}

function renderMessages(messages, keepScroll) {
  const ol = $("messages");
  const atBottom = ol.scrollTop + ol.clientHeight >= ol.scrollHeight - 20;
  ol.replaceChildren(...messages.map(m => {
    const system = m.direction === "out" && (m.author === "system" || m.author === "auto-reply");
    const bot = m.direction === "out" && m.author === "bot";
    const cls = system ? "system" : bot ? "out bot" : m.direction;
    const d = m.delivery;
    return h("li", { class: cls, "data-message": m.id },
      h("div", { class: "bubble" }, (m.content && m.content.length ? m.content : [{ type: "text", text: m.text }]).map(renderContent)),
      h("div", { class: "meta" }, clock(m.created_at), m.direction === "out" ? " · " + (system ? "系统" : bot ? "智能客服" : nameOf("agents", m.author)) : "",
        m.direction === "out" && d ? h("span", { class: "delivery " + d, "data-delivery": d, title: m.delivery_error || "" }, " · " + (DELIVERY[d] || d)) : null,
        d === "failed" && m.delivery_error ? h("span", { class: "delivery failed" }, "（" + m.delivery_error + "）") : null));
  }));
  if (!keepScroll || atBottom) ol.scrollTop = ol.scrollHeight;
}

// Rich elements going with the next reply (an inserted suggestion's pictures and cards), for
// one session; each can be dropped before sending. They go as the reply's `content` after the text.
let pending = { session: null, items: [] };
function attachLabel(el) {
  switch (el.type) {
    case "image": return "图片 " + el.url;
    case "product": return "商品卡片 " + (el.title ? el.title + "（" + el.product_id + "）" : el.product_id);
    case "order": return "订单卡片 " + el.order_id;
    default: return el.fallback || el.type;
  }
}
function renderPending() {
  const items = pending.session === st.current ? pending.items : [];
  $("reply-attach").replaceChildren(...items.map((el, i) => h("span", { class: "attach-chip", "data-type": el.type },
    attachLabel(el),
    h("button", { class: "attach-drop", title: "不发送这一项", "aria-label": "移除", onclick: () => {
      pending.items.splice(i, 1); renderPending();
    } }, "✕"))));
  $("reply-attach").hidden = !items.length;
}
function setPending(items) { pending = { session: st.current, items: items.slice() }; renderPending(); }

async function send() {
  const text = $("reply-text").value.trim();
  const items = pending.session === st.current ? pending.items : [];
  if ((!text && !items.length) || !st.current) return;
  $("btn-send").disabled = true;
  const body = items.length ? (text ? { text, content: items } : { content: items }) : { text };
  const r = await api("POST", "/sessions/" + st.current + "/reply", body);
  $("btn-send").disabled = false;
  if (r.status === 202) {
    $("reply-text").value = "";
    setPending([]);
    const hits = r.data.compliance && r.data.compliance.hits || [];
    $("reply-note").textContent = hits.length ? "已发送，提示：" + hits.map(x => x.word || x.category || "").join("、") : "";
    refreshMessages();
  } else {
    $("reply-note").textContent = (r.data.code === "compliance_blocked" ? "未发送（违规）：" : "发送失败：") + (r.data.message || r.status);
    refreshMessages();
  }
}
$("btn-send").addEventListener("click", send);
$("reply-text").addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); } });

// ---------------------------------------------------------------- quick replies

async function loadQuickTemplates() { /* rendered per session below */ }
async function loadQuick(id) {
  const r = await api("GET", "/sessions/" + id + "/quick-replies");
  const sel = $("quick");
  sel.replaceChildren(h("option", { value: "" }, "快捷短语…"));
  if (!r.ok) return;
  quickReplies = r.data.replies;
  $("quick-list").replaceChildren(...quickReplies.map(q => h("option", { value: q.title }, q.text.slice(0, 40))));
  for (const q of r.data.replies) {
    sel.append(h("option", { value: q.text, "data-id": q.id, title: q.missing.length ? "缺少：" + q.missing.join("、") : "" },
      q.title + (q.missing.length ? "（缺" + q.missing.join("、") + "）" : "")));
  }
}
// `/` searches the quick replies: a filtered list by title or text; Enter (or a pick) fills the box.
let quickReplies = [];
// A quick reply is another answer: a suggestion's pictures and cards do not go with it.
function fillQuick(q) { $("reply-text").value = q.text; setPending([]); $("reply-text").focus(); $("quick-search").value = ""; }
$("quick-search").addEventListener("input", () => {
  const v = $("quick-search").value.trim();
  const exact = quickReplies.find(q => q.title === v);
  if (exact) { fillQuick(exact); return; }
  $("quick-list").replaceChildren(...quickReplies.filter(q => !v || q.title.includes(v) || q.text.includes(v))
    .map(q => h("option", { value: q.title }, q.text.slice(0, 40))));
});
$("quick-search").addEventListener("keydown", (e) => {
  if (e.key !== "Enter" || e.isComposing) return;
  e.preventDefault();
  const v = $("quick-search").value.trim();
  const hit = quickReplies.find(q => q.title.includes(v) || q.text.includes(v));
  if (hit) fillQuick(hit);
});
// Keyboard: Alt+N the next conversation with unread messages; `/` (outside a text field)
// searches quick replies; Enter (and Ctrl+Enter) in the reply box sends (its own handler).
function typing(t) { return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable); }
document.addEventListener("keydown", (e) => {
  if (!st.token || st.view !== "desk") return;
  if (e.altKey && (e.key === "n" || e.key === "N")) {
    e.preventDefault();
    const unread = st.sessions.filter(s => s.unread > 0);
    const i = unread.findIndex(s => s.id === st.current);
    const next = unread[(i + 1) % Math.max(1, unread.length)];
    if (next) openSession(next.id);
    return;
  }
  if (e.key === "/" && !typing(e.target) && st.current) { e.preventDefault(); $("quick-search").focus(); }
});

$("quick").addEventListener("change", () => {
  const v = $("quick").value;
  if (v) { $("reply-text").value = v; setPending([]); $("reply-text").focus(); }
  $("quick").value = "";
});

// ---------------------------------------------------------------- agent assist (智能推荐)

async function loadSuggestions(id) {
  const r = await api("GET", "/sessions/" + id + "/suggestions");
  const box = $("suggest");
  box.replaceChildren();
  if (!r.ok || !r.data.suggestions.length) return;
  box.append(h("span", { class: "muted" }, "智能推荐："));
  for (const s of r.data.suggestions) {
    // The entry's pictures and cards come with it: listed in the tooltip, marked on the button,
    // and put beside the reply box on insert (each can be dropped there). Best first; the figures
    // are in the tooltip only: the order weighs words and meaning, so no single one of them
    // would read in order on the buttons.
    const attach = s.attach || [];
    box.append(h("button", {
      class: "suggestion", "data-entry": s.entry, "data-attach": attach.length,
      title: s.answer + (attach.length ? "\n附带：" + attach.map(attachLabel).join("；") : "") +
        "\n（匹配：" + s.matched.join(" ") + "，相似度 " + s.similarity.toFixed(2) + "，语义 " + s.semantic.toFixed(2) + "，置信度 " + s.confidence.toFixed(2) + "）",
      onclick: () => { $("reply-text").value = s.answer; setPending(attach); $("reply-text").focus(); },
    }, s.question, attach.length ? h("span", { class: "attach-count" }, " +" + attach.length) : null));
  }
}

// ---------------------------------------------------------------- customer panel

function renderCustomer(d) {
  const c = d.customer || {}, s = d.session;
  const orders = (d.trades || []).filter(t => t.kind === "order");
  const refunds = (d.trades || []).filter(t => t.kind === "refund");
  const tags = h("input", { id: "cust-tags", value: (c.tags || []).join("，"), placeholder: "用逗号分隔" });
  const notes = h("textarea", { id: "cust-notes", rows: 3 });
  notes.value = c.notes || "";
  const saved = h("span", { class: "muted" });
  const history = h("ul", { id: "cust-history" });
  $("customer").replaceChildren(
    h("h3", {}, c.nick || ("买家 " + c.id)),
    h("dl", {},
      h("dt", {}, "平台"), h("dd", {}, nameOf("platforms", c.platform), " · ", nameOf("shops", c.shop)),
      h("dt", {}, "会员"), h("dd", {}, c.vip_level > 0 ? "VIP" + c.vip_level : "普通"),
      h("dt", {}, "粉丝"), h("dd", {}, c.fans_level > 0 ? "粉丝团 " + c.fans_level + " 级" : "—"),
      h("dt", {}, "累计消费"), h("dd", {}, yuan(c.lifetime_fen)),
      h("dt", {}, "技能组"), h("dd", { "data-group": s.skill_group || "" }, nameOf("groups", s.skill_group) || "—"),
      h("dt", {}, "上次客服"), h("dd", {}, nameOf("agents", c.last_agent) || "—")),
    h("h4", {}, "标签"), h("div", {}, (c.tags || []).map(t => h("span", { class: "tag" }, t))), tags,
    h("h4", {}, "备注"), notes,
    h("div", {}, h("button", { id: "cust-save", onclick: async () => {
      const r = await api("PUT", "/customers/" + c.id + "/profile", { tags: tags.value.split(/[,，]/).map(x => x.trim()).filter(Boolean), notes: notes.value });
      saved.textContent = r.ok ? " 已保存" : " " + errText(r.data);
    } }, "保存"), saved),
    h("h4", {}, "最近订单"), orders.length ? h("ul", {}, orders.slice(0, 5).map(t => h("li", {}, t.order_id || "", " ", t.stage, " ", yuan(t.amount_fen)))) : h("p", { class: "muted" }, "无"),
    h("h4", {}, "退款"), refunds.length ? h("ul", {}, refunds.slice(0, 5).map(t => h("li", {}, t.refund_id || t.order_id || "", " ", t.stage, " ", yuan(t.amount_fen)))) : h("p", { class: "muted" }, "无"),
    h("h4", {}, "历史消息 ", h("button", { onclick: async () => {
      const r = await api("GET", "/customers/" + c.id + "/history?limit=20");
      if (r.ok) history.replaceChildren(...r.data.messages.map(m => h("li", {}, clock(m.created_at), " ", m.direction === "in" ? "买家：" : "回复：", m.text)));
    } }, "加载")), history,
    h("h4", {}, "分配原因"), h("p", { class: "muted", id: "cust-why" }, whyText(d.decisions)));
}
// The last decision in Chinese: the steps on the way, then why; older decisions (recorded
// before reason codes) show their English text.
function whyText(decisions) {
  if (!decisions || !decisions.length) return "—";
  const last = decisions[decisions.length - 1], r = last.reasons;
  if (!r || !r.why || !r.why.code) return last.why || "—";
  const parts = (r.path || []).map(renderReason);
  parts.push(renderReason(r.why));
  const cat = r.category && r.category.code ? "（分类：" + nameOf("categories", last.category) + "，" + renderReason(r.category) + "）" : "";
  return parts.join("；") + cat;
}

// ---------------------------------------------------------------- close / transfer / blacklist

$("btn-close").addEventListener("click", async () => {
  if (!st.current || !confirm("结束这个会话？")) return;
  const r = await api("POST", "/sessions/" + st.current + "/close");
  if (!r.ok) alert(errText(r.data));
  st.current = null;
  $("chat-main").hidden = true;
  $("chat-empty").hidden = false;
  $("customer").replaceChildren();
  loadSessions();
});

$("btn-transfer").addEventListener("click", async () => {
  const sel = $("tr-target");
  sel.replaceChildren();
  const [agents, routing] = [await api("GET", "/agents"), st.detail];
  const groups = new Set();
  for (const a of agents.ok ? agents.data.agents : []) Object.keys(a.groups || {}).forEach(g => groups.add(g));
  if (routing && routing.session.skill_group) groups.add(routing.session.skill_group);
  for (const g of groups) sel.append(h("option", { value: "group:" + g }, "技能组 " + nameOf("groups", g)));
  for (const a of agents.ok ? agents.data.agents : []) if (a.id !== st.me.id) sel.append(h("option", { value: "agent:" + a.id }, a.name + "（" + (STATUS[a.status] || a.status) + "）"));
  $("tr-error").textContent = "";
  $("dlg-transfer").showModal();
});
$("form-transfer").addEventListener("submit", async (e) => {
  if (e.submitter && e.submitter.value === "cancel") return;
  e.preventDefault();
  const [kind, id] = $("tr-target").value.split(/:(.*)/);
  const body = { problem: $("tr-problem").value, tried: $("tr-tried").value, expects: $("tr-expects").value };
  body[kind === "agent" ? "to_agent" : "to_group"] = id;
  const r = await api("POST", "/sessions/" + st.current + "/transfer", body);
  if (!r.ok) { $("tr-error").textContent = errText(r.data); return; }
  $("dlg-transfer").close();
  loadSessions();
  openSession(st.current, true);
});

$("btn-blacklist").addEventListener("click", () => { $("bl-error").textContent = ""; $("dlg-blacklist").showModal(); });
$("form-blacklist").addEventListener("submit", async (e) => {
  if (e.submitter && e.submitter.value === "cancel") return;
  e.preventDefault();
  const d = st.detail, c = d.customer;
  const evidence = d.messages.filter(m => m.direction === "in").slice(-3).map(m => String(m.id));
  const r = await api("POST", "/blacklist", { platform: c.platform, shop: c.shop, buyer_id: c.buyer_id, level: $("bl-level").value, reason: $("bl-reason").value, evidence });
  if (!r.ok) { $("bl-error").textContent = errText(r.data); return; }
  $("dlg-blacklist").close();
  $("reply-note").textContent = "拉黑申请已提交，等待组长审批";
});

// ---------------------------------------------------------------- dashboard

function show(view) {
  st.view = view;
  $("desk").hidden = view !== "desk";
  $("dash").hidden = view !== "dash";
  $("kb").hidden = view !== "kb";
  $("tab-desk").classList.toggle("active", view === "desk");
  $("tab-dash").classList.toggle("active", view === "dash");
  $("tab-kb").classList.toggle("active", view === "kb");
  if (view === "dash") loadDashboard();
  if (view === "kb") loadKnowledge();
}
$("tab-desk").addEventListener("click", () => show("desk"));
$("tab-dash").addEventListener("click", () => show("dash"));
$("tab-kb").addEventListener("click", () => show("kb"));

const HANDOVER = { asked_for_agent: "买家要求", low_confidence: "未识别", category_complaint: "投诉", two_answers_did_not_help: "两次回答未解决", answer_blocked: "答案被合规拦截" };
const secs = (v) => v === null || v === undefined ? "—" : v < 60 ? v.toFixed(1) + "秒" : since(v * 1000);
const pct = (v) => v === null || v === undefined ? "—" : (v * 100).toFixed(0) + "%";

async function loadDashboard() {
  const r = await api("GET", "/dashboard");
  if (!r.ok) { $("alerts").replaceChildren(h("div", { class: "alert" }, r.data.message)); return; }
  const d = r.data, t = d.thresholds;
  $("alerts").replaceChildren(...(d.alerts.length ? d.alerts.map(a => h("div", { class: "alert", "data-alert": a.kind }, "⚠ ", a.message))
    : [h("div", { class: "ok-line" }, "一切正常：无超时等待，待回复 " + d.unanswered + " 个（阈值 " + t.backlog_alert + "）")]));
  $("dash-groups").tBodies[0].replaceChildren(...d.groups.map(g => h("tr", { "data-group": g.id },
    h("td", {}, g.name), h("td", {}, g.queued),
    h("td", { class: g.longest_wait_s > t.wait_alert_s ? "warn" : "" }, g.longest_wait_s === null ? "—" : since(g.longest_wait_s * 1000)),
    h("td", {}, g.unanswered), h("td", {}, g.online + "/" + g.members), h("td", {}, g.sessions), h("td", {}, pct(g.reply_rate)),
    h("td", { class: g.first_response_s > t.first_response_alert_s ? "warn" : "" }, secs(g.first_response_s)), h("td", {}, secs(g.response_s)))));
  $("dash-agents").tBodies[0].replaceChildren(...d.agents.map(a => h("tr", {},
    h("td", {}, a.name), h("td", {}, STATUS[a.status] || a.status), h("td", {}, a.active), h("td", {}, a.cap), h("td", {}, pct(a.load)))));
  const s = await api("GET", "/status");
  if (s.ok) {
    const shopOf = (key) => { const [p, shop] = key.split("/"); return (PLATFORM[p] || p) + " · " + shop; };
    const rows = Object.entries(s.data.channel_states).map(([key, c]) => h("tr", { "data-channel": key, class: c.operator_must_act ? "warn" : "" },
      h("td", {}, shopOf(key)), h("td", {}, key.split("/")[2]), h("td", {}, (CHANNEL[c.state] || c.state) + (c.operator_must_act ? "（需处理）" : "")),
      h("td", {}, c.detail), h("td", {}, c.next_attempt_ms ? clock(c.next_attempt_ms) : "—")));
    rows.push(...Object.entries(s.data.shop_tokens).map(([key, t]) => h("tr", { "data-token": key, class: t.state === "reauthorize_needed" ? "warn" : "" },
      h("td", {}, shopOf(key)), h("td", {}, "授权"), h("td", {}, TOKEN[t.state] || t.state), h("td", {}, t.detail), h("td", {}, "—"))));
    $("dash-shops").tBodies[0].replaceChildren(...(rows.length ? rows
      : [h("tr", {}, h("td", { colspan: 5, class: "muted" }, "推送类店铺无长连接；授权刷新后在此显示"))]));
  }
  const kb = await api("GET", "/knowledge/figures");
  if (kb.ok) {
    const f = kb.data, hand = Object.entries(f.handovers).map(([k, n]) => (HANDOVER[k] || k) + " " + n).join("，");
    const counted = f.since ? "自 " + new Date(f.since).toLocaleString("zh-CN", { hour12: false }) + " 起" : "至今";
    $("dash-bot-summary").textContent = "知识库 " + f.entries + " 条；" + counted + "机器人累计接待 " + f.considered + " 条消息，回答 " + f.answered
      + " 条（识别率 " + pct(f.recognition_rate) + "）" + (hand ? "；转人工：" + hand : "");
    const resolved = $("dash-bot-resolved");
    resolved.dataset.resolved = String(f.resolved);
    resolved.textContent = "机器人回答过的会话 " + f.bot_conversations + " 个：无需人工解决 " + f.resolved + " 个，未解决 " + f.unresolved
      + " 个（解决率 " + pct(f.resolution_rate) + "；买家在机器人最后一次回答后 " + f.resolved_after_minutes + " 分钟内未再发言即算解决），待定 " + f.awaiting + " 个";
    $("dash-bot-entries").tBodies[0].replaceChildren(...f.by_entry.slice(0, 10).map(e => h("tr", { "data-entry": e.entry }, h("td", {}, e.entry), h("td", {}, e.answered))));
    $("dash-bot-unanswered").tBodies[0].replaceChildren(...f.unanswered.slice(0, 10).map(u => h("tr", {}, h("td", {}, u.text), h("td", {}, u.times))));
  }
  $("bl-count").textContent = d.blacklist_pending ? "(" + d.blacklist_pending + ")" : "";
  const bl = await api("GET", "/blacklist?state=proposed");
  $("dash-blacklist").tBodies[0].replaceChildren(...(bl.ok ? bl.data.entries : []).map(e => h("tr", {},
    h("td", {}, PLATFORM[e.platform] || e.platform), h("td", {}, e.buyer_id), h("td", {}, e.level), h("td", {}, e.reason), h("td", {}, e.proposed_by),
    h("td", {}, h("button", { onclick: () => decide(e.id, "approve") }, "批准"), " ", h("button", { onclick: () => decide(e.id, "reject") }, "驳回")))));
  loadCharts();
  $("dash-foot").textContent = "阈值：等待 > " + t.wait_alert_s + " 秒，待回复 > " + t.backlog_alert + " 个，首响 > " + t.first_response_alert_s
    + " 秒；响应数据为最近 " + d.window_minutes + " 分钟。更新于 " + clock(d.now);
}
// The day in pictures (GET /dashboard/series): one line per group in each of four charts.
const CHARTS = [
  ["chart-queued", (p) => p.queued],
  ["chart-wait", (p) => p.longest_wait_s],
  ["chart-frt", (p) => p.first_response_s === null ? null : Math.round(p.first_response_s * 10) / 10],
  ["chart-rate", (p) => p.reply_rate === null ? null : Math.round(p.reply_rate * 100)],
];
const COLORS = ["#1664ff", "#f53f3f", "#00b42a", "#ff7d00", "#722ed1", "#14c9c9"];
const charts = {};
async function loadCharts() {
  if (typeof uPlot === "undefined") return;
  const r = await api("GET", "/dashboard/series?minutes=1440");
  if (!r.ok) return;
  const groups = r.data.groups;
  const xs = [...new Set(groups.flatMap(g => g.points.map(p => p.at)))].sort((a, b) => a - b);
  for (const [id, pick] of CHARTS) {
    const data = [xs.map(t => t / 1000)];
    for (const g of groups) {
      const at = new Map(g.points.map(p => [p.at, pick(p)]));
      data.push(xs.map(t => at.has(t) ? at.get(t) : null));
    }
    const key = groups.map(g => g.id).join(",");
    const el = $(id);
    if (charts[id] && charts[id].key === key) { charts[id].plot.setData(data); continue; }
    if (charts[id]) charts[id].plot.destroy();
    const opts = {
      width: Math.max(280, el.clientWidth || 480), height: 200,
      series: [{ label: "时间", value: (u, v) => v === null ? "—" : clock(v * 1000) }].concat(groups.map((g, i) =>
        ({ label: g.name, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false, points: { show: xs.length < 3 } }))),
      axes: [{ values: (u, vals) => vals.map(v => clock(v * 1000).slice(0, 5)) }, {}],
      scales: { x: { time: true } },
    };
    el.replaceChildren();
    charts[id] = { key, plot: new uPlot(opts, data, el) };
  }
  $("charts").setAttribute("data-points", String(xs.length));
}

async function decide(id, action) {
  const r = await api("POST", "/blacklist/" + id + "/" + action, {});
  if (!r.ok) alert(errText(r.data));
  loadDashboard();
}
setInterval(() => { if (st.view === "dash" && st.token) loadDashboard(); }, 5000);

// ---------------------------------------------------------------- knowledge base (leads)

const ORDER_STATE = { none: "无订单", unpaid: "待付款", paid: "已付款", shipped: "已发货", delivered: "已签收",
  refunding: "退款中", refunded: "已退款", closed: "已关闭" };
const kb = { entries: [], editing: null, hits: {} };
const hm = (m) => String(Math.floor(m / 60)).padStart(2, "0") + ":" + String(m % 60).padStart(2, "0");
const minutes = (v) => { const [a, b] = v.split(":").map(Number); return a * 60 + b; };
const words = (v) => v.split(/[,，、\s]+/).map(x => x.trim()).filter(Boolean);

// An entry's attachments ([[entry.attach]]) as lines to edit: a picture's URL, a product id or
// {product} (optionally "| title"), {order}.
function attachLines(list) {
  return (list || []).map(a => a.image || (a.product ? a.product + (a.title ? " | " + a.title : "") : a.order || "")).join("\n");
}
function attachOf(lines) {
  return lines.split("\n").map(x => x.trim()).filter(Boolean).map(line => {
    if (/^https?:\/\//i.test(line)) return { image: line };
    if (line === "{order}") return { order: line };
    const [product, ...title] = line.split("|");
    const t = title.join("|").trim();
    return t ? { product: product.trim(), title: t } : { product: product.trim() };
  });
}
function attachText(list) {
  return (list || []).map(a => a.image ? "图片" : a.product ? "商品卡片" + (a.product === "{product}" ? "（当前商品）" : " " + a.product) : "订单卡片").join("、");
}

function conditionText(w) {
  const parts = [];
  if (w.platforms.length) parts.push(w.platforms.map(p => PLATFORM[p] || p).join("/"));
  if (w.shops.length) parts.push("店铺 " + w.shops.join("/"));
  if (w.products.length) parts.push("商品 " + w.products.join("/"));
  if (w.order_states.length) parts.push(w.order_states.map(s => ORDER_STATE[s] || s).join("/"));
  if (w.hours) parts.push(hm(w.hours.from) + "–" + hm(w.hours.to));
  return parts.join("；") || "不限";
}

async function loadKnowledge() {
  const r = await api("GET", "/knowledge/entries");
  $("kb-error").textContent = r.ok ? "" : errText(r.data);
  if (!r.ok) return;
  kb.entries = r.data.entries;
  // Hits per entry (the bot's answers, totals kept in the store), for the trainer.
  const f = await api("GET", "/knowledge/figures");
  kb.hits = f.ok ? Object.fromEntries(f.data.by_entry.map(e => [e.entry, e.answered])) : {};
  renderKnowledge();
}

function renderKnowledge() {
  const f = $("kb-filter").value.trim();
  const shown = kb.entries.filter(e => !f || [e.question, e.answer, ...e.variants].some(t => t.includes(f)));
  $("kb-count").textContent = "共 " + kb.entries.length + " 条" + (f ? "，显示 " + shown.length + " 条" : "");
  $("kb-entries").tBodies[0].replaceChildren(...shown.map(e => h("tr", { "data-entry": e.id },
    h("td", {}, e.id), h("td", {}, e.question), h("td", { title: e.variants.join("\n") }, e.variants.length + " 个"),
    h("td", { class: "answer" }, e.answer, (e.attach || []).length
      ? h("div", { class: "muted small attach-list", title: attachLines(e.attach) }, "附带：" + attachText(e.attach)) : null),
    h("td", {}, e.category || ""), h("td", {}, conditionText(e.when)),
    h("td", { class: "hits" }, kb.hits[e.id] || 0),
    // Entries of a 千牛 CSV export are read-only here: the export is edited, not the entry.
    e.editable
      ? h("td", { class: "actions" }, h("button", { onclick: () => editEntry(e) }, "编辑"), " ",
        h("button", { onclick: () => removeEntry(e) }, "删除"))
      : h("td", { class: "actions muted readonly", title: "来自 " + e.source + "（[knowledge] csv）：请修改该文件，或用 huiliu faq import 导入 faq.toml 后再编辑" },
        "只读（" + e.source + "）"))));
}
$("kb-filter").addEventListener("input", renderKnowledge);

function editEntry(e) {
  kb.editing = e ? e.id : null;
  const w = e ? e.when : { platforms: [], shops: [], products: [], order_states: [] };
  $("kb-title").textContent = e ? "编辑知识条目 " + e.id : "新增知识条目";
  // A new entry may be named (the name in the figures); an entry's id never changes.
  $("kb-id").value = e ? e.id : "";
  $("kb-id").disabled = !!e;
  $("kb-question").value = e ? e.question : "";
  $("kb-variants").value = e ? e.variants.join("\n") : "";
  $("kb-answer").value = e ? e.answer : "";
  $("kb-attach").value = e ? attachLines(e.attach) : "";
  $("kb-category").value = (e && e.category) || "";
  $("kb-platforms").value = w.platforms.join(", ");
  $("kb-shops").value = w.shops.join(", ");
  $("kb-products").value = w.products.join(", ");
  $("kb-states").replaceChildren(...Object.entries(ORDER_STATE).map(([k, v]) => h("label", {},
    h("input", { type: "checkbox", value: k, checked: w.order_states.includes(k) }), v)));
  $("kb-from").value = w.hours ? hm(w.hours.from % 1440) : "";
  $("kb-to").value = w.hours ? hm(w.hours.to % 1440) : "";
  $("kb-dlg-error").textContent = "";
  $("dlg-kb").showModal();
}
$("kb-new").addEventListener("click", () => editEntry(null));

$("form-kb").addEventListener("submit", async (ev) => {
  if (ev.submitter && ev.submitter.value === "cancel") return;
  ev.preventDefault();
  const body = {
    question: $("kb-question").value,
    variants: $("kb-variants").value.split("\n").map(x => x.trim()).filter(Boolean),
    answer: $("kb-answer").value,
    attach: attachOf($("kb-attach").value),
    when: {
      platforms: words($("kb-platforms").value), shops: words($("kb-shops").value), products: words($("kb-products").value),
      order_states: [...$("kb-states").querySelectorAll("input:checked")].map(i => i.value),
    },
  };
  const category = $("kb-category").value.trim();
  if (category) body.category = category;
  const id = $("kb-id").value.trim();
  if (!kb.editing && id) body.id = id;
  if ($("kb-from").value && $("kb-to").value) body.when.hours = { from: minutes($("kb-from").value), to: minutes($("kb-to").value) };
  const r = kb.editing
    ? await api("PUT", "/knowledge/entries/" + encodeURIComponent(kb.editing), body)
    : await api("POST", "/knowledge/entries", body);
  if (!r.ok) { $("kb-dlg-error").textContent = errText(r.data) + (r.data.message ? "（" + r.data.message + "）" : ""); return; }
  $("dlg-kb").close();
  $("kb-note").textContent = (kb.editing ? "已保存 " : "已新增 ") + r.data.id + "，已生效";
  loadKnowledge();
});

async function removeEntry(e) {
  if (!confirm("删除知识条目 " + e.id + "「" + e.question + "」？")) return;
  const r = await api("DELETE", "/knowledge/entries/" + encodeURIComponent(e.id));
  if (!r.ok) { $("kb-error").textContent = errText(r.data); return; }
  $("kb-note").textContent = "已删除 " + e.id;
  loadKnowledge();
}

// ---------------------------------------------------------------- boot

if (st.token) start(); else showLogin();
