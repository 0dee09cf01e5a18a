// The station display. State arrives whole as server-sent events ("state"); every text goes in
// through textContent, never as HTML: a barcode is untrusted input.
"use strict";

const VERDICT = {
  expected: "EXPECTED", duplicate: "DUPLICATE", unknown: "UNKNOWN", invalid: "BAD READ",
  command: "STATION", idle: "READY",
};
const HINT = {
  expected: { receive: "Expected return: received", inspect: "Inspect this return",
              restock: "Restock this return", reject: "Reject this return" },
  duplicate: "Already scanned at this station in this mode",
  unknown: "Not expected: set the parcel aside for review",
  invalid: "Bad read: scan the label again",
  idle: "Scan a return label",
};

let state = null;
let clockOffsetMs = 0;   // server clock minus this browser's clock
let shownSeq = null;
let source = null;
let retryTimer = null;

const $ = (id) => document.getElementById(id);

function text(id, value) {
  $(id).textContent = value == null ? "" : String(value);
}

function customerName(customer) {
  if (!customer) return "";
  if (typeof customer === "string") return customer;
  return customer.name || "";
}

function printable(raw) {
  // a GS1 group separator and other control characters shown, not swallowed
  return raw == null ? "" : String(raw).replace(/[\u0000-\u001f]/g, (c) => (c === "\u001d" ? "<GS>" : "·"));
}

function age(ts) {
  if (!ts) return null;
  const ms = Date.now() + clockOffsetMs - Date.parse(ts);
  return Number.isFinite(ms) ? Math.max(0, ms / 1000) : null;
}

function ageText(seconds) {
  if (seconds == null) return "";
  if (seconds < 60) return `${Math.floor(seconds)} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  return `${Math.floor(seconds / 3600)} h ago`;
}

function renderLast(last) {
  const main = $("result");
  const outcome = last ? last.outcome : "idle";
  main.dataset.outcome = outcome;
  text("verdict", VERDICT[outcome] || String(outcome).toUpperCase());
  const ret = last && last.return;
  let hint = HINT[outcome] || "";
  if (outcome === "expected") hint = HINT.expected[last.mode] || "Expected return";
  if (outcome === "invalid" && last.error) hint = `${HINT.invalid} (${last.error})`;
  if (outcome === "command" && last.command) {
    hint = last.command.name === "mode" ? `Mode changed to ${String(last.command.value).toUpperCase()}`
                                        : `Command ${last.command.name} ${last.command.value || ""}`;
  }
  text("hint", hint);
  text("order", ret ? ret.order_number : "");
  text("customer", ret ? customerName(ret.customer) : "");
  text("bin", ret && ret.bin ? `Bin ${ret.bin}` : "");
  const items = $("items");
  items.replaceChildren();
  for (const item of (ret && ret.items) || []) {
    const li = document.createElement("li");
    li.append(`${item.qty || 1} × ${item.name || item.sku || "item"} `);
    if (item.sku) {
      const sku = document.createElement("span");
      sku.className = "sku";
      sku.textContent = item.sku;
      li.append(sku);
    }
    items.append(li);
  }
  if (last && last.seq !== shownSeq) {
    main.dataset.seq = String(last.seq);
    main.dataset.shownAt = String(Date.now());
    if (shownSeq !== null) {  // a new scan: a short flash, so two greens in a row look different
      main.classList.remove("flash");
      void main.offsetWidth;
      main.classList.add("flash");
    }
    shownSeq = last.seq;
  }
  tick();
}

function renderHealth(s) {
  text("title", s.station.title);
  document.title = `Dock station ${s.station.title}`;
  const mode = $("mode");
  mode.dataset.mode = s.mode || "";
  text("mode", s.mode || "?");
  const broker = $("broker");
  broker.dataset.state = s.broker.connected ? "connected" : "disconnected";
  text("broker", s.broker.connected ? "central: online" : "central: OFFLINE (scans kept)");
  const outbox = $("outbox");
  outbox.dataset.warn = s.outbox.depth > 0 ? "yes" : "no";
  text("outbox", s.outbox.depth > 0 ? `to send: ${s.outbox.depth}` : "all sent");
  for (const outcome of ["expected", "duplicate", "unknown", "invalid"]) {
    text(`count-${outcome}`, s.today.counts[outcome] || 0);
  }
  const devices = [];
  for (const sc of s.scanners) {
    devices.push(device(`scanner ${sc.id}`, sc.connected ? "ok" : "disconnected", sc.connected));
  }
  $("scanners").replaceChildren(...devices);
  $("printers").replaceChildren(...s.printers.map(
    (p) => device(`printer ${p.id}`, p.state, p.state === "ready")));
  $("storage").hidden = !s.storage_full;
}

function device(label, stateText, ok) {
  const span = document.createElement("span");
  span.className = "dev";
  span.dataset.ok = ok ? "yes" : "no";
  span.textContent = `${label}: ${stateText}`;
  return span;
}

function render(s) {
  state = s;
  clockOffsetMs = s.server_time_ms - Date.now();
  renderHealth(s);
  renderLast(s.last);
}

function tick() {
  const now = new Date(Date.now() + clockOffsetMs);
  text("clock", now.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
  if (!state || !state.last) return;
  const last = state.last;
  const seconds = age(last.ts);
  const where = [`#${last.seq}`, `scanner ${last.scanner}`, last.mode, ageText(seconds), printable(last.raw)];
  text("meta", where.filter(Boolean).join(" · "));
  const dim = state.station.dim_after_s;
  $("result").classList.toggle("stale", dim > 0 && seconds != null && seconds > dim);
}

function setConnected(yes) {
  document.body.dataset.connected = yes ? "yes" : "no";
}

function connect() {
  clearTimeout(retryTimer);
  // a page served beyond loopback needs the token its kiosk URL carries (?token=...)
  const token = new URLSearchParams(window.location.search).get("token");
  source = new EventSource(token ? "events?token=" + encodeURIComponent(token) : "events");
  source.addEventListener("state", (event) => {
    setConnected(true);
    render(JSON.parse(event.data));
  });
  source.onerror = () => {
    setConnected(false);
    if (source.readyState === EventSource.CLOSED) {
      // EventSource gives up on some failures (an HTTP error while the agent restarts): retry here
      source.close();
      retryTimer = setTimeout(connect, 2000);
    }
  };
}

connect();
setInterval(tick, 1000);
