// The workbench in real headless Chromium, driven step by step by tests/tests/workbench.rs.
//
// Protocol: this script prints `STEP <name> [detail]` lines on stdout and, where the Rust test
// must act (send a buyer message from the simulator, check what the simulator received), waits
// for a `GO` line on stdin. Any failure prints `FAIL <reason>` and exits 1.
//
// Environment: BASE_URL (the daemon), CHROMIUM (the browser binary), SHOTS (screenshot folder),
// AGENT / LEAD / PASSWORD (logins), BUYER_TEXT (what the buyer writes).
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const BASE = env("BASE_URL"), SHOTS = env("SHOTS"), PASSWORD = env("PASSWORD");
mkdirSync(SHOTS, { recursive: true });

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function go() {
  const { value, done } = await lines.next();
  if (done || value.trim() !== "GO") throw new Error(`expected GO on stdin, got ${done ? "EOF" : value}`);
}
const step = (name, detail = "") => console.log(`STEP ${name} ${detail}`.trim());

const browser = await chromium.launch({
  executablePath: env("CHROMIUM"),
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 }, locale: "zh-CN" });
  page.setDefaultTimeout(20000);
  page.on("pageerror", (e) => console.log(`PAGEERROR ${e.message}`));
  // The daemon's Content-Security-Policy is in force: anything it blocks is a failure.
  const violations = [];
  page.on("console", (m) => {
    if (/Content Security Policy|Refused to (load|execute|apply|connect|frame)/.test(m.text())) violations.push(m.text());
  });
  const noViolations = (where) => {
    if (violations.length) throw new Error(`CSP violation ${where}: ${violations.join(" / ")}`);
  };

  async function login(user) {
    await page.goto(BASE + "/");
    await page.fill("#login-user", user);
    await page.fill("#login-password", PASSWORD);
    await page.click("#login-submit");
    await page.waitForSelector("#app:not([hidden])");
    await page.waitForSelector("#conn.ok"); // the event stream is connected
  }

  // A wrong password is refused with a message, in Chinese or from the server.
  await page.goto(BASE + "/");
  await page.fill("#login-user", env("AGENT"));
  await page.fill("#login-password", "wrong-password");
  await page.click("#login-submit");
  await page.waitForFunction(() => document.querySelector("#login-error").textContent.length > 0);
  await page.screenshot({ path: join(SHOTS, "login.png") });

  await login(env("AGENT"));
  await page.selectOption("#status", "online");
  await page.waitForFunction(() => document.querySelector("#status").value === "online");
  // Let the status change land before the buyer writes.
  await page.waitForTimeout(300);
  step("logged-in");
  await go(); // the simulator sends the buyer message now

  // It appears in the list without a reload.
  const buyerText = env("BUYER_TEXT");
  const item = page.locator("#sessions li", { hasText: buyerText });
  await item.waitFor();
  const badge = await item.locator(".badge.douyin").textContent();
  if (badge !== "抖音") throw new Error(`platform badge says ${badge}`);
  // The alert for a new conversation: a toast naming the group, a count in the tab title.
  await page.locator('#toast[data-kind="new"]:not([hidden])', { hasText: "新会话" }).waitFor();
  const toast = (await page.locator("#toast").textContent()).trim();
  if (!toast.includes("售前")) throw new Error(`alert says ${toast}`);
  const title = await page.title();
  if (!title.startsWith("(1) ")) throw new Error(`tab title is ${title}`);
  await page.screenshot({ path: join(SHOTS, "alert.png") });
  step("alert", `${title} | ${toast}`);
  await item.click();
  if ((await page.title()).startsWith("(")) throw new Error("opening the conversation did not clear the count");
  // The switches are remembered per user: turn the title count off, reload, it stays off.
  await page.click("#btn-alerts");
  await page.uncheck("#al-title");
  await page.click("#al-ok");
  const saved = await page.evaluate(() => localStorage.getItem("huiliu.alerts.a01"));
  if (!saved || JSON.parse(saved).title !== false) throw new Error(`alert switches not kept: ${saved}`);
  await page.click("#btn-alerts");
  await page.check("#al-title");
  await page.click("#al-ok");
  await page.locator("#messages li.in", { hasText: buyerText }).waitFor();

  // Agent assist (智能推荐): the knowledge base's answers beside the reply box; one click puts
  // the answer in the box, where it can still be edited (the quick reply below replaces it).
  const suggestion = page.locator("#suggest button.suggestion").first();
  await suggestion.waitFor();
  await suggestion.click();
  const suggested = await page.inputValue("#reply-text");
  if (!suggested.includes("现货")) throw new Error(`the suggestion did not fill the box: ${suggested}`);
  // Its entry's picture ([[entry.attach]]) waits beside the box, to go with the reply; it can be
  // dropped (✕) and comes back with the suggestion.
  const chip = page.locator('#reply-attach .attach-chip[data-type="image"]', { hasText: "colors.png" });
  await chip.waitFor();
  await page.screenshot({ path: join(SHOTS, "suggestions.png") });
  await chip.locator("button.attach-drop").click();
  await page.locator("#reply-attach").waitFor({ state: "hidden" });
  await suggestion.click();
  await chip.waitFor();
  // The customer panel speaks Chinese: the group by its display name, the assignment reason
  // rendered from its code (no English words, no config ids).
  const group = (await page.locator('#customer dd[data-group]').textContent()).trim();
  if (group !== "售前") throw new Error(`skill group shown as ${group}`);
  const why = (await page.locator("#cust-why").textContent()).trim();
  if (!/[\u4e00-\u9fff]/.test(why) || /[A-Za-z]{3,}/.test(why)) throw new Error(`assignment reason not in Chinese: ${why}`);
  step("why", why);

  // Reply with a quick reply (filled in with the buyer's nick and the agent's name).
  const option = page.locator('#quick option[data-id="greet"]');
  await option.waitFor({ state: "attached" });
  const text = await option.getAttribute("value");
  if (!text.includes("小美")) throw new Error(`quick reply not filled in: ${text}`);
  await page.selectOption("#quick", { value: text });
  if ((await page.inputValue("#reply-text")) !== text) throw new Error("the quick reply did not fill the box");
  // Another answer: the suggestion's picture does not go with it.
  await page.locator("#reply-attach").waitFor({ state: "hidden" });
  await page.click("#btn-send");
  step("replied", text);
  await go(); // the Rust test checked the simulator got it, correctly signed

  // The reply shows as delivered (pushed over the event stream, no reload).
  await page.locator("#messages li.out", { hasText: text }).locator('[data-delivery="sent"]').waitFor();
  // The list follows: the buyer is answered, no unread badge, no wait clock.
  await item.locator(".badge.unread").waitFor({ state: "detached" });
  await page.waitForTimeout(1100); // one tick of the wait clocks
  await page.screenshot({ path: join(SHOTS, "workbench.png") });
  step("delivered");

  // Rich content: the buyer sends a picture, a product card and an order card.
  step("rich-wait");
  await go();
  const thumb = page.locator("#messages li.in img.thumb");
  await thumb.waitFor();
  await page.locator('#messages .card.product[data-product="P1001"]', { hasText: "商品ID P1001" }).waitFor();
  await page.locator('#messages .card.order[data-order="6930001"]', { hasText: "订单号 6930001" }).waitFor();
  await page.waitForFunction(() => { const i = document.querySelector("#messages img.thumb"); return i && i.naturalWidth > 0; });
  await thumb.click();
  await page.locator("#dlg-image[open] #lightbox-img").waitFor();
  await page.screenshot({ path: join(SHOTS, "rich.png") });
  await page.keyboard.press("Escape");
  await page.locator("#dlg-image[open]").waitFor({ state: "detached" });
  // Keyboard: `/` searches the quick replies, Enter fills the box.
  await page.locator("#messages").click();
  await page.keyboard.press("/");
  if (!(await page.evaluate(() => document.activeElement && document.activeElement.id === "quick-search"))) throw new Error("`/` did not focus the quick-reply search");
  await page.keyboard.type("发货");
  await page.keyboard.press("Enter");
  const filled = await page.inputValue("#reply-text");
  if (!filled.includes("发货")) throw new Error(`quick-reply search filled ${filled}`);
  await page.fill("#reply-text", "");
  step("rich", filled);

  // Search: by nick and platform; the results replace the open list, closed ones included.
  await page.fill("#q-text", "小鱼");
  await page.selectOption("#q-kind", "nick");
  await page.selectOption("#q-platform", "douyin");
  await page.click("#q-go");
  await page.waitForFunction(() => document.querySelector("#list-title").textContent === "搜索结果");
  await page.locator("#sessions li", { hasText: "小鱼儿" }).waitFor();
  const found = await page.locator("#sessions li").count();
  await page.screenshot({ path: join(SHOTS, "search.png") });
  // A nick nobody has finds nothing; clearing brings the open list back.
  await page.fill("#q-text", "没有这个人");
  await page.click("#q-go");
  await page.locator("#no-sessions:not([hidden])").waitFor();
  await page.click("#q-clear");
  await page.locator("#sessions li", { hasText: "小鱼儿" }).waitFor();
  step("search", String(found));

  // The lead's dashboard.
  await page.click("#logout");
  await page.waitForSelector("#login:not([hidden])");
  await login(env("LEAD"));
  await page.click("#tab-dash");
  await page.locator("#dash-groups tbody tr").first().waitFor();
  await page.locator("#dash-agents tbody tr").first().waitFor();
  await page.locator("#dash-shops tbody tr").first().waitFor();
  // The day in pictures: four charts drawn by the vendored uPlot, one line per group.
  for (const id of ["chart-queued", "chart-wait", "chart-frt", "chart-rate"]) await page.locator(`#${id} canvas`).waitFor();
  await page.waitForFunction(() => Number(document.querySelector("#charts").getAttribute("data-points")) >= 1);
  const legend = (await page.locator("#chart-queued .u-legend").textContent()) || "";
  if (!legend.includes("售前")) throw new Error(`chart legend says ${legend}`);
  step("charts", await page.locator("#charts").getAttribute("data-points"));
  // The bot's figures, with the conversations it resolved without a human.
  await page.locator("#dash-bot-resolved[data-resolved]").waitFor({ state: "attached" });
  const resolved = (await page.locator("#dash-bot-resolved").textContent()) || "";
  if (!resolved.includes("无需人工解决")) throw new Error(`the bot's resolved line reads ${resolved}`);
  await page.screenshot({ path: join(SHOTS, "dashboard.png"), fullPage: true });
  noViolations("in the workbench or the dashboard");
  const groups = await page.locator("#dash-groups tbody tr").count();
  step("dashboard", String(groups));

  // The lead's knowledge base (知识库): add an entry, find it, change its answer, remove it.
  await page.click("#tab-kb");
  await page.locator("#kb-entries tbody tr").first().waitFor();
  const before = await page.locator("#kb-entries tbody tr").count();
  // A 千牛 CSV export's entry is listed read-only, with its file.
  await page.fill("#kb-filter", "数字人民币");
  const csvRow = page.locator("#kb-entries tbody tr", { hasText: "可以用数字人民币付款吗" });
  await csvRow.waitFor();
  const csvText = (await csvRow.textContent()) || "";
  if (!csvText.includes("只读（qianniu.csv）")) throw new Error(`the CSV entry reads ${csvText}`);
  if ((await csvRow.getByText("编辑").count()) !== 0) throw new Error("a CSV entry offers 编辑");
  await page.fill("#kb-filter", "");
  await page.click("#kb-new");
  await page.fill("#kb-id", "vat-invoice");
  await page.fill("#kb-question", "可以开增值税专用发票吗");
  await page.fill("#kb-variants", "能开专票吗\n专票怎么开");
  await page.fill("#kb-answer", "{buyer}您好，可以开专票～");
  await page.check('#kb-states input[value="paid"]');
  await page.click("#kb-save");
  await page.waitForFunction(() => document.querySelector("#kb-note").textContent.includes("已新增"));
  await page.fill("#kb-filter", "专票");
  const row = page.locator("#kb-entries tbody tr", { hasText: "可以开增值税专用发票吗" });
  await row.waitFor();
  await row.getByText("编辑").click();
  await page.fill("#kb-answer", "{buyer}您好，专票请在订单页申请～");
  await page.click("#kb-save");
  await page.waitForFunction(() => document.querySelector("#kb-note").textContent.includes("已保存"));
  await page.locator("#kb-entries tbody tr", { hasText: "订单页申请" }).waitFor();
  const conditions = (await row.locator("td").nth(5).textContent()) || "";
  if (!conditions.includes("已付款")) throw new Error(`the entry's conditions read ${conditions}`);
  await page.screenshot({ path: join(SHOTS, "knowledge.png"), fullPage: true });
  const id = await row.getAttribute("data-entry");
  page.once("dialog", (d) => d.accept());
  await row.getByText("删除").click();
  await page.waitForFunction(() => document.querySelector("#kb-note").textContent.includes("已删除"));
  noViolations("in the knowledge base");
  step("knowledge", `${before} ${id}`);
  await browser.close();
  step("done");
  process.exit(0);
} catch (e) {
  console.log(`FAIL ${e && e.stack ? e.stack.split("\n").slice(0, 3).join(" | ") : e}`);
  try { await browser.close(); } catch (_) { /* already gone */ }
  process.exit(1);
}
