// The station display. State arrives whole as server-sent events ("state"); every text goes in
// through textContent, never as HTML: a barcode is untrusted input.
"use strict";

const VERDICT = {
  expected: "EXPECTED", duplicate: "DUPLICATE", unknown: "UNKNOWN", invalid: "BAD READ",
  command: "STATION", idle: "READY", item: "COUNTED", extra_item: "NOT EXPECTED",
};
const EXTRA = {
  not_in_return: "NOT IN THIS RETURN", over_quantity: "ONE TOO MANY", wrong_serial: "WRONG SERIAL",
};
const EXTRA_HINT = {
  not_in_return: "This item is not part of this return: put it aside",
  over_quantity: "All of this item are counted already",
  wrong_serial: "This serial number is not the one sold (or was counted already)",
};
const CLOSED = {
  complete: "COMPLETE", short: "SHORT", extra: "EXTRA ITEMS", cancelled: "CANCELLED",
};
const PAGE_MS = 5000;
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
let checklistPage = 0;
let pageTurnedAt = 0;
let touchedLine = null;
let receiptShown = null;

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

function grams(g) {
  return g == null ? "?" : `${Math.round(g).toLocaleString("en")} g`;
}

function renderWeight(last, main) {
  // a parcel's weight (mqtt.md "Scales"): light or heavy takes the whole result's colour
  const w = last && last.weight;
  const el = $("weight");
  el.hidden = !w;
  if (!w) return;
  el.dataset.check = w.check;
  const expected = w.expected_g != null ? `expected about ${grams(w.expected_g)}` : null;
  if (w.check === "light" || w.check === "heavy") {
    main.dataset.outcome = `weight_${w.check}`;
    text("verdict", w.check === "light" ? "TOO LIGHT" : "TOO HEAVY");
    text("hint", "Open the parcel and check what is inside");
    text("weight", `weighs ${grams(w.grams)}, ${expected}: check the contents`);
  } else if (w.check === "ok") {
    text("weight", `weighs ${grams(w.grams)} (${expected})`);
  } else if (last.weighing) {
    text("weight", "weighing…");
  } else if (w.stable) {
    text("weight", `weighs ${grams(w.grams)} (no weight on record for this return)`);
  } else {
    text("weight", `weight not checked: ${w.detail || "no stable weight"}`);
  }
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
  renderWeight(last, main);
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
  renderReceipt(last);
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

function lineName(line) {
  return line ? line.name || line.sku || line.gtin || "item" : "item";
}

function renderReceipt(last) {
  // While a receipt is open: the last item scan's result, then the checklist. Just after one
  // closed (until the next scan): its summary, with what is missing.
  const main = $("result");
  const receipt = state && state.receipt;
  const closed = state && state.receipt_closed;
  const section = $("receipt");
  const missing = $("missing");
  main.classList.toggle("receiving", Boolean(receipt));
  section.hidden = !receipt;
  missing.hidden = true;
  if (!receipt) {
    // a receipt the worker ended (or left) shows its summary; one ended by the next parcel or a
    // mode change leaves the page to that scan's own result
    const ended = closed && ["done", "idle", "cancel"].includes(closed.closed_by);
    if (ended && (!last || closed.after_seq >= last.seq)) renderClosed(closed);
    return;
  }
  if (receipt.receipt_id !== receiptShown) {
    receiptShown = receipt.receipt_id;
    touchedLine = null;
    checklistPage = 0;
  }
  const outcome = last ? last.outcome : null;
  const onThis = last && last.receipt && last.receipt.receipt_id === receipt.receipt_id;
  if (onThis && outcome === "item") {
    const line = receipt.lines[last.receipt.line];
    text("verdict", VERDICT.item);
    text("hint", `${lineName(line)}: ${line.received_qty} of ${line.expected_qty}` +
         (last.qty > 1 ? ` (+${last.qty})` : "") + (last.grade ? ` · grade ${last.grade}` : ""));
    if (last.seq !== shownSeq) touchedLine = last.receipt.line;
  } else if (onThis && outcome === "extra_item") {
    text("verdict", EXTRA[last.reason] || VERDICT.extra_item);
    text("hint", EXTRA_HINT[last.reason] || "");
  } else if (onThis && outcome === "command" && last.command) {
    text("verdict", last.command.name === "grade" ? `GRADE ${last.command.value}`
                  : last.command.name === "qty" ? `NEXT ITEM × ${last.command.value}` : VERDICT.command);
    text("hint", "Scan the next item");
  }
  text("receipt-return", `Return ${receipt.return_id}` + (receipt.order_number ? ` · ${receipt.order_number}` : ""));
  text("receipt-grade", `grade ${receipt.grade}`);
  const qty = $("receipt-qty");
  qty.hidden = !receipt.pending_qty;
  text("receipt-qty", receipt.pending_qty ? `next × ${receipt.pending_qty}` : "");
  const got = receipt.lines.reduce((n, l) => n + l.received_qty, 0);
  const want = receipt.lines.reduce((n, l) => n + l.expected_qty, 0);
  text("receipt-progress", `${got}/${want}` + (receipt.extra ? ` +${receipt.extra} extra` : ""));
  const list = $("checklist");
  const rows = receipt.lines.map((line, i) => {
    const li = document.createElement("li");
    li.dataset.status = line.status;
    li.dataset.line = String(i);
    li.classList.toggle("touched", i === touchedLine);
    const cells = [
      ["qty", `${line.received_qty}/${line.expected_qty}`],
      ["name", lineName(line)],
      ["grades", Object.entries(line.grades).map(([g, n]) => `${g}×${n}`).join(" ")],
      ["state", line.status === "complete" ? "✓" : line.status === "short"
        ? `${line.expected_qty - line.received_qty} missing` : "missing"],
    ];
    for (const [cls, value] of cells) {
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = value;
      li.append(span);
    }
    return li;
  });
  list.replaceChildren(...rows);
  paginate(true);
}

function paginate(fresh) {
  // Show whole rows only: as many as fit, a page at a time, the page with the line just counted
  // first; pages turn by themselves every few seconds. Nothing is clipped silently.
  const list = $("checklist");
  const rows = Array.from(list.children);
  const pager = $("checklist-page");
  if (!rows.length) { pager.hidden = true; return; }
  rows.forEach((r) => { r.hidden = false; });
  const rowHeight = rows[0].offsetHeight || 1;
  pager.hidden = true;
  let perPage = Math.max(1, Math.floor(list.clientHeight / rowHeight));
  if (rows.length > perPage) {
    pager.hidden = false;  // the page number takes room of its own: measure again with it shown
    pager.textContent = "page 1 of 2 ▸";
    perPage = Math.max(1, Math.floor(list.clientHeight / rowHeight));
  }
  const pages = Math.ceil(rows.length / perPage);
  if (fresh && touchedLine != null) checklistPage = Math.floor(touchedLine / perPage);
  if (checklistPage >= pages) checklistPage = 0;
  rows.forEach((r, i) => { r.hidden = Math.floor(i / perPage) !== checklistPage; });
  pager.hidden = pages < 2;
  pager.textContent = pages < 2 ? "" : `page ${checklistPage + 1} of ${pages} ▸`;
  list.dataset.pages = String(pages);
  list.dataset.perPage = String(perPage);
  if (fresh) pageTurnedAt = Date.now();
}

function renderClosed(closed) {
  const main = $("result");
  main.dataset.outcome = `receipt-${closed.verdict}`;
  text("verdict", CLOSED[closed.verdict] || String(closed.verdict).toUpperCase());
  let hint = `Return ${closed.return_id}: ${closed.received} of ${closed.expected} items`;
  if (closed.extra) hint += `, ${closed.extra} not expected`;
  text("hint", hint);
  text("order", closed.order_number || "");
  text("customer", "");
  $("items").replaceChildren();
  const missing = $("missing");
  // at most five lines, then how many more: a summary is read at a glance, never cut off
  const shown = closed.missing.length > 6 ? closed.missing.slice(0, 5) : closed.missing;
  const rows = shown.map((m) => `missing ${m.missing} × ${m.name || m.sku || "item"}`);
  if (shown.length < closed.missing.length) rows.push(`… and ${closed.missing.length - shown.length} more lines`);
  missing.replaceChildren(...rows.map((row) => {
    const li = document.createElement("li");
    li.textContent = row;
    return li;
  }));
  missing.hidden = closed.missing.length === 0;
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
  for (const outcome of ["expected", "duplicate", "unknown", "invalid", "item"]) {
    text(`count-${outcome}`, s.today.counts[outcome] || 0);
  }
  const devices = [];
  for (const sc of s.scanners) {
    devices.push(device(`scanner ${sc.id}`, sc.connected ? "ok" : "disconnected", sc.connected));
  }
  $("scanners").replaceChildren(...devices);
  $("printers").replaceChildren(...s.printers.map(
    (p) => device(`printer ${p.id}`, p.state, p.state === "ready")));
  const scales = s.scales || [];
  $("scales").replaceChildren(...scales.map((sc) => device(
    `scale ${sc.id}`, sc.grams != null ? `${sc.state} ${grams(sc.grams)}` : sc.state,
    sc.state === "ok" || sc.state === "motion")));
  // the live weight while something is on the station's scale
  const live = $("scale-live");
  const sc = scales[0];
  live.hidden = !sc || sc.grams == null || (sc.state === "ok" && sc.grams < 1);
  if (sc) {
    live.dataset.stable = sc.stable ? "yes" : "no";
    text("scale-live", `⚖ ${grams(sc.grams)}${sc.stable ? "" : " …"}`);
  }
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
  if (state && state.receipt && Date.now() - pageTurnedAt > PAGE_MS) {
    const pages = Number($("checklist").dataset.pages || 1);
    if (pages > 1) {
      checklistPage = (checklistPage + 1) % pages;
      paginate(false);
      pageTurnedAt = Date.now();
    }
  }
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
window.addEventListener("resize", () => paginate(false));
