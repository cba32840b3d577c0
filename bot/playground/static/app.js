// The gridbot playground page: one Telegram-like chat per persona, kept current by server-sent events.
// Page chrome follows the page language toggle; what the bot says comes from the bot in each persona's language.
"use strict";

const WORDS = {
  zh: {
    playground: "演示", simulatedTime: "模拟时间", plusDay: "+1 天", plusWeek: "+1 周",
    columns: "并排显示", oneChat: "逐个显示", otherLang: "English", send: "发送", placeholder: "输入消息…",
    photo: "发送照片", location: "发送位置", scan: "📷 扫码绑定", edited: "已编辑", ok: "确定", empty: "还没有消息",
    days: "天", lost: "与演示服务器的连接已断开，正在重连…",
    tooLong: "一条消息最多 {max} 个字符，这条有 {count} 个。请删减后再发送，已输入的内容仍保留在输入框中。",
    pasteTooLong: "粘贴后将超过 {max} 个字符，未粘贴。请分几条发送。",
    help: "李秀兰已绑定楼栋，可直接点“📝 提交诉求”；Anna 还没有绑定：点“📷 扫码绑定”（模拟扫描楼栋二维码）或发送 /building。"
      + "王网格员和陈主任负责李秀兰的楼栋。王网格员巡查时可用 /lead 上报线索（就地解决、自己受理或上报）、/visit 记录走访、"
      + "/patrol 夜间巡逻（用“发送位置”打卡）、/targets 记录陈主任“飞线充电整治”的点位是否已整改；陈主任用 /campaign 查看进度。"
      + "张建国是孔明社区已报到的志愿者（党员，南阳供电公司）：陈主任发送 /post 发布志愿岗位，张建国收到通知后点按钮认领时段，"
      + "到岗时签到、离岗时签退，/myservice 查看服务时长和评价；陈主任发送 /volunteers 查看报到链接和待审核的报到。"
      + "陈主任发送 /meeting 管理每周的三方联席会商（居委会、业委会、物业）：设置时间、邀请各方代表、记录出席和决议。"
      + "报到区中心的诉求，Zhou Min 可在卡片上点“🏢 分流给部门”交给刘队长的东关城管中队，附上要求和时限；城管中队办结后，"
      + "诉求回到区中心，由区中心向居民确认结果。"
      + "“+1 天/+1 周”把调度器的时钟往前拨：岗位提醒、缺岗标记、会商议程和决议提醒随之发出。",
  },
  en: {
    playground: "playground", simulatedTime: "Simulated time", plusDay: "+1 day", plusWeek: "+1 week",
    columns: "Side by side", oneChat: "One at a time", otherLang: "中文", send: "Send", placeholder: "Message…",
    photo: "Send a photo", location: "Send a location", scan: "📷 Scan QR", edited: "edited", ok: "OK", empty: "No messages yet",
    days: "d", lost: "Lost the connection to the playground; reconnecting…",
    tooLong: "A message may have at most {max} characters; this one has {count}. Shorten it and send again: what you typed is still in the box.",
    pasteTooLong: "Pasting this would make the message longer than {max} characters, so it was not pasted. Send it in several messages.",
    help: "Li Xiulan is bound to her building: tap “📝 New request” (提交诉求) to file one. Anna is not bound yet: "
      + "tap “📷 Scan QR” (as if scanning the code on the building) or send /building. The grid worker and the community admin handle Li's "
      + "building. On his rounds the grid worker files leads with /lead (solved on the spot, taken on or reported up), "
      + "records visits with /visit, patrols at night with /patrol (“Send a location” at each checkpoint) and records "
      + "the targets of the community's “飞线充电整治” campaign with /targets; the community admin follows it with /campaign. "
      + "Zhang Jianguo is a volunteer checked in to Kongming community (a party member from the power company): "
      + "the community admin publishes a volunteer post with /post, Zhang claims a slot with its button, checks in and out "
      + "at the post, and sees his hours and ratings with /myservice; the admin sees the check-in link and pending check-ins "
      + "with /volunteers. The admin runs the weekly three-party meeting (residents' committee, owners' committee, property "
      + "company) with /meeting: its time, the parties' invitations, attendance and decisions. A request that reaches the "
      + "district center can be handed (分流) by Zhou Min with “🏢 To a department” on its card to Captain Liu's urban "
      + "management squad, with an instruction and a deadline; when the squad is done it comes back to the district "
      + "center, which confirms the result to the resident. “+1 day / +1 week” move the "
      + "scheduler's clock forward, so post reminders, no-shows, the meeting agenda and decision reminders go out.",
  },
};

// Telegram's limit for one message; the server refuses longer text as well.
const MAX_TEXT_LENGTH = 4096;

const params = new URLSearchParams(location.search);
const page = {
  lang: params.get("lang") || localStorage.getItem("playground-lang") || (navigator.language.startsWith("zh") ? "zh" : "en"),
  layout: localStorage.getItem("playground-layout") || "tabs",
  active: "resident1",
  clock: null,
  presets: [],
  personas: new Map(), // key -> persona from /api/state plus its view
};

const word = (key, values = {}) => (WORDS[page.lang][key] || key)
  .replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "on") Object.entries(value).forEach(([type, fn]) => node.addEventListener(type, fn));
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name in node) node[name] = value;
    else node.setAttribute(name, value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

// The server answers only calls that carry the token it wrote into this page.
const API_TOKEN = document.querySelector('meta[name="playground-token"]').content;
const withToken = (path) => `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(API_TOKEN)}`;

async function post(path, body, key = page.active) {
  const headers = { "X-Playground-Token": API_TOKEN };
  const options = body instanceof FormData
    ? { method: "POST", headers, body }
    : { method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, options);
  if (!response.ok) {
    const problem = await response.json().catch(() => ({ error: response.statusText }));
    showToast(key, problem.error || response.statusText, true);
  }
  return response;
}

const act = (persona, action, body) => post(`/api/personas/${persona.key}/${action}`, body, persona.key);

// --- chrome ---------------------------------------------------------------------------------------------

function applyChrome() {
  document.documentElement.lang = page.lang;
  document.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = word(node.dataset.i18n); });
  document.getElementById("help").textContent = word("help");
  document.getElementById("page-lang-toggle").textContent = word("otherLang");
  document.getElementById("layout-toggle").textContent = word(page.layout === "tabs" ? "columns" : "oneChat");
  document.body.className = `${page.layout}-layout`;
  for (const persona of page.personas.values()) refreshHead(persona);
  renderClock();
}

function renderClock() {
  if (!page.clock) return;
  const now = new Date(Date.now() + page.clock.offset_seconds * 1000);
  const format = new Intl.DateTimeFormat(page.lang === "zh" ? "zh-CN" : "en-GB", {
    timeZone: page.clock.timezone, dateStyle: "medium", timeStyle: "short",
  });
  document.getElementById("clock-now").textContent = format.format(now);
  const days = Math.round(page.clock.offset_seconds / 86400);
  document.getElementById("clock-offset").textContent = days ? `(+${days} ${word("days")})` : "";
}

// --- chats ----------------------------------------------------------------------------------------------

function buildChat(persona) {
  const view = { nodes: new Map() };
  view.list = el("div", { className: "messages" });
  view.keyboard = el("div", { className: "reply-keyboard" });
  view.presets = el("div", { className: "presets", hidden: true });
  view.langButtons = ["zh", "en"].map((lang) => el("button", {
    type: "button", textContent: lang === "zh" ? "中文" : "EN", dataset: { lang },
    on: { click: () => act(persona, "language", { language: lang }) },
  }));
  view.title = el("small");
  view.scan = persona.building_code && el("button", {
    type: "button", className: "scan", on: { click: () => act(persona, "text", { text: `/start b_${persona.building_code}` }) },
  });
  const head = el("div", { className: "chat-head" },
    el("div", { className: "avatar", textContent: persona.name.slice(0, 1) }),
    el("div", { className: "who" }, el("strong", { textContent: persona.name }), view.title),
    view.scan, ...view.langButtons);
  view.root = el("section", { className: "chat", dataset: { persona: persona.key } },
    head, view.list, view.keyboard, view.presets, buildComposer(persona, view));
  for (const preset of page.presets) view.presets.append(presetButton(persona, view, preset));
  persona.view = view;
  return view.root;
}

function buildComposer(persona, view) {
  view.input = el("input", {
    type: "text", name: "text", autocomplete: "off", maxLength: MAX_TEXT_LENGTH,
    on: { paste: (event) => refuseLongPaste(persona, event) },
  });
  view.send = el("button", { type: "submit", className: "send" });
  view.photoButton = el("button", { type: "button", className: "icon", textContent: "📎" });
  view.locationButton = el("button", { type: "button", className: "icon", textContent: "📍" });
  const file = el("input", { type: "file", accept: "image/*", on: { change: () => sendPhoto(persona, file) } });
  view.photoButton.addEventListener("click", () => file.click());
  view.locationButton.addEventListener("click", () => { view.presets.hidden = !view.presets.hidden; });
  return el("form", { className: "composer", on: { submit: (event) => { event.preventDefault(); sendText(persona); } } },
    view.photoButton, file, view.locationButton, view.input, view.send);
}

function presetButton(persona, view, preset) {
  return el("button", {
    type: "button", dataset: { zh: preset.name_zh, en: preset.name_en },
    on: { click: () => {
      view.presets.hidden = true;
      act(persona, "location", { latitude: preset.latitude, longitude: preset.longitude });
    } },
  });
}

function refreshHead(persona) {
  const view = persona.view;
  view.title.textContent = persona.title[page.lang];
  view.langButtons.forEach((button) => button.classList.toggle("on", button.dataset.lang === persona.language));
  if (view.scan) view.scan.textContent = word("scan");
  view.list.dataset.empty = word("empty");
  view.input.placeholder = word("placeholder");
  view.send.textContent = word("send");
  view.photoButton.title = word("photo");
  view.locationButton.title = word("location");
  view.presets.querySelectorAll("button").forEach((button) => {
    button.textContent = `📍 ${button.dataset[page.lang]}`;
  });
  persona.tab.querySelector("small").textContent = persona.title[page.lang];
}

async function sendText(persona) {
  const input = persona.view.input;
  const text = input.value.trim();
  if (!text) return;
  if (text.length > MAX_TEXT_LENGTH) {
    showToast(persona.key, word("tooLong", { max: MAX_TEXT_LENGTH, count: text.length }), true);
    return;
  }
  input.value = "";
  const response = await act(persona, "text", { text });
  if (!response.ok && !input.value) input.value = text; // refused: nothing typed is lost
}

// The browser would cut a long paste at maxlength without a word; refuse it instead and say why.
function refuseLongPaste(persona, event) {
  const input = persona.view.input;
  const pasted = event.clipboardData?.getData("text") ?? "";
  const kept = input.value.length - (input.selectionEnd - input.selectionStart);
  if (kept + pasted.length <= MAX_TEXT_LENGTH) return;
  event.preventDefault();
  showToast(persona.key, word("pasteTooLong", { max: MAX_TEXT_LENGTH }), true);
}

async function sendPhoto(persona, input) {
  const [file] = input.files;
  input.value = "";
  if (!file) return;
  const form = new FormData();
  form.append("photo", file, file.name);
  const caption = persona.view.input.value.trim();
  if (caption) form.append("caption", caption);
  persona.view.input.value = "";
  await post(`/api/personas/${persona.key}/photo`, form);
}

// --- messages -------------------------------------------------------------------------------------------

function renderMessage(persona, message) {
  const bubble = el("div", { className: "bubble" });
  if (message.photo) {
    const src = withToken(`/api/files/${encodeURIComponent(message.photo)}`);
    bubble.append(el("a", { href: src, target: "_blank" }, el("img", { src, alt: "photo" })));
  }
  if (message.document) {
    const { file_id: id, name, size } = message.document;
    bubble.append(el("a", {
      className: "document", href: withToken(`/api/files/${encodeURIComponent(id)}`), download: name,
      textContent: `📄 ${name} (${Math.ceil(size / 1024)} KB)`,
    }));
  }
  if (message.location) bubble.append(el("div", { textContent: `📍 ${message.location.latitude.toFixed(5)}, ${message.location.longitude.toFixed(5)}` }));
  if (message.contact) bubble.append(el("div", { textContent: `👤 ${message.contact.phone_number}` }));
  // Message dates come from the simulated clock; shown, like the header, in the district's time zone.
  const time = new Date(message.date * 1000).toLocaleTimeString(page.lang === "zh" ? "zh-CN" : "en-GB", {
    hour: "2-digit", minute: "2-digit", timeZone: page.clock?.timezone,
  });
  const meta = el("span", { className: "meta", textContent: message.edited ? `${word("edited")} ${time}` : time });
  const text = message.text ?? message.caption;
  // The time floats at the end of the text, so it takes room on the last line instead of beside every line.
  bubble.append(text ? el("div", { className: "text" }, text, meta) : meta);
  return el("div", { className: `msg ${message.from_bot ? "in" : "out"}`, dataset: { id: message.id } },
    bubble, renderInlineKeyboard(persona, message));
}

function renderInlineKeyboard(persona, message) {
  if (!message.buttons.length) return null;
  return el("div", { className: "inline-keyboard" }, ...message.buttons.map((row) => el("div", { className: "row" },
    ...row.map((button) => (button.url
      ? el("a", { href: button.url, target: "_blank", rel: "noopener", textContent: button.text, title: button.text })
      : el("button", {
        type: "button", textContent: button.text, title: button.text,
        on: { click: () => act(persona, "press", { message_id: message.id, data: button.data }) },
      }))))));
}

function renderReplyKeyboard(persona, keyboard) {
  const view = persona.view;
  view.keyboard.replaceChildren();
  if (!keyboard) return;
  for (const row of keyboard.rows) {
    view.keyboard.append(el("div", { className: "row" }, ...row.map((button) => el("button", {
      type: "button", textContent: button.text,
      on: { click: () => (button.location
        ? (view.presets.hidden = false)
        : act(persona, "text", { text: button.text })) },
    }))));
  }
}

function upsertMessage(persona, message) {
  const { list, nodes } = persona.view;
  const old = nodes.get(message.id);
  if (message.deleted) {
    old?.remove();
    nodes.delete(message.id);
    return;
  }
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const node = renderMessage(persona, message);
  if (old) old.replaceWith(node);
  else list.append(node);
  nodes.set(message.id, node);
  if (atBottom || !old) list.scrollTop = list.scrollHeight;
}

function showToast(key, text, alert) {
  const persona = page.personas.get(key);
  if (!persona) return;
  const toast = el("div", { className: alert ? "toast alert" : "toast", role: "status", textContent: text });
  if (alert) toast.append(el("button", { type: "button", textContent: word("ok"), on: { click: () => toast.remove() } }));
  else setTimeout(() => toast.remove(), 2500);
  persona.view.root.append(toast);
}

// --- tabs and layout ------------------------------------------------------------------------------------

function buildTab(persona) {
  persona.badge = el("span", { className: "badge" });
  persona.tab = el("button", {
    type: "button", className: "tab", dataset: { tab: persona.key }, on: { click: () => activate(persona.key) },
  }, persona.name, persona.badge, el("small"));
  return persona.tab;
}

function activate(key) {
  page.active = key;
  for (const persona of page.personas.values()) {
    const active = persona.key === key;
    persona.tab.classList.toggle("active", active);
    persona.view.root.classList.toggle("active", active);
    if (active) persona.badge.textContent = "";
  }
  const persona = page.personas.get(key);
  persona.view.root.scrollIntoView({ block: "nearest", inline: "nearest" });
  persona.view.list.scrollTop = persona.view.list.scrollHeight;
}

function markUnread(persona) {
  if (page.layout === "columns" || persona.key === page.active) return;
  persona.badge.textContent = String(Number(persona.badge.textContent || 0) + 1);
}

// --- state and events -----------------------------------------------------------------------------------

async function loadState() {
  const state = await (await fetch("/api/state", { headers: { "X-Playground-Token": API_TOKEN } })).json();
  page.clock = state.clock;
  page.presets = state.presets;
  page.personas = new Map(state.personas.map((persona) => [persona.key, persona]));
  const tabs = document.getElementById("tabs");
  const chats = document.getElementById("chats");
  tabs.replaceChildren(...state.personas.map(buildTab));
  chats.replaceChildren(...state.personas.map(buildChat));
  for (const persona of state.personas) {
    persona.messages.forEach((message) => upsertMessage(persona, message));
    renderReplyKeyboard(persona, persona.keyboard);
  }
  applyChrome();
  activate(page.personas.has(page.active) ? page.active : state.personas[0].key);
}

function handleEvent(event) {
  if (event.type === "clock") {
    page.clock = event;
    renderClock();
    return;
  }
  const persona = page.personas.get(event.persona);
  if (!persona) return;
  if (event.type === "message") {
    upsertMessage(persona, event.message);
    renderReplyKeyboard(persona, event.keyboard);
    if (event.message.from_bot && !event.message.edited) markUnread(persona);
  } else if (event.type === "answer") {
    showToast(persona.key, event.text, event.alert);
  } else if (event.type === "language") {
    persona.language = event.language;
    refreshHead(persona);
  }
}

function connect() {
  const status = document.getElementById("status");
  const source = new EventSource(withToken("/api/events"));
  // Reloading the whole state on every (re)connection covers whatever happened while disconnected.
  source.addEventListener("open", () => { status.hidden = true; loadState(); });
  source.addEventListener("message", (event) => handleEvent(JSON.parse(event.data)));
  source.addEventListener("error", () => { status.textContent = word("lost"); status.hidden = false; });
}

function moveClock(days) {
  return post("/api/clock", { days }).then(async (response) => {
    if (response.ok) { page.clock = await response.json(); renderClock(); }
  });
}

document.getElementById("plus-day").addEventListener("click", () => moveClock(1));
document.getElementById("plus-week").addEventListener("click", () => moveClock(7));
document.getElementById("page-lang-toggle").addEventListener("click", () => {
  page.lang = page.lang === "zh" ? "en" : "zh";
  localStorage.setItem("playground-lang", page.lang);
  applyChrome();
});
document.getElementById("layout-toggle").addEventListener("click", () => {
  page.layout = page.layout === "tabs" ? "columns" : "tabs";
  localStorage.setItem("playground-layout", page.layout);
  applyChrome();
  activate(page.active);
});
setInterval(renderClock, 1000);
applyChrome();
connect();
