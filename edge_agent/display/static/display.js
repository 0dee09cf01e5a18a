// The station display. State arrives whole as server-sent events ("state"); every text goes in
// through textContent, never as HTML: a barcode is untrusted input.
"use strict";

// Every text goes through the catalogs (edge_agent/display/catalogs/: gettext .po/.mo, managed
// with Babel, whose JavaScript extractor finds the _(), ngettext() and pgettext() calls below).
// The tables are functions: the words are looked up when shown, in the station's language.
let MESSAGES = {};
let LANG = "en";

function fill(s, args) {
  return args ? s.replace(/\{(\w+)\}/g, (m, k) => (k in args ? String(args[k]) : m)) : s;
}
function _(msgid, args) {
  const found = MESSAGES[msgid];
  return fill(typeof found === "string" && found ? found : msgid, args);
}
function pgettext(context, msgid, args) {
  const found = MESSAGES[`${context}\u0004${msgid}`];
  return fill(typeof found === "string" && found ? found : msgid, args);
}
function ngettext(singular, plural, n, args) {
  // all of the page's languages have two forms, one for 1 and one for the rest (catalog test)
  const forms = MESSAGES[singular];
  const form = Array.isArray(forms) && forms[n === 1 ? 0 : 1] ? forms[n === 1 ? 0 : 1] : (n === 1 ? singular : plural);
  return fill(form, { n, ...args });
}

const VERDICT = () => ({
  expected: _("EXPECTED"), duplicate: _("DUPLICATE"), unknown: _("UNKNOWN"), invalid: _("BAD READ"),
  command: _("STATION"), idle: _("READY"), item: _("COUNTED"), extra_item: _("NOT EXPECTED"),
});
const EXTRA = () => ({
  not_in_return: _("NOT IN THIS RETURN"), over_quantity: _("ONE TOO MANY"), wrong_serial: _("WRONG SERIAL"),
});
const EXTRA_HINT = () => ({
  not_in_return: _("This item is not part of this return: put it aside"),
  over_quantity: _("All of this item are counted already"),
  wrong_serial: _("This serial number is not the one sold (or was counted already)"),
});
const CLOSED = () => ({
  complete: _("COMPLETE"), short: _("SHORT"), extra: _("EXTRA ITEMS"), cancelled: _("CANCELLED"),
});
const PAGE_MS = 5000;
const HINT = () => ({
  expected: { receive: _("Expected return: received"), inspect: _("Inspect this return"),
              restock: _("Restock this return"), reject: _("Reject this return") },
  duplicate: _("Already scanned at this station in this mode"),
  unknown: _("Not expected: set the parcel aside for review"),
  invalid: _("Bad read: scan the label again"),
  idle: _("Scan a return label"),
});
const MODE = () => ({
  receive: pgettext("mode", "receive"), inspect: pgettext("mode", "inspect"),
  restock: pgettext("mode", "restock"), reject: pgettext("mode", "reject"),
});
const PRINTER_STATE = () => ({
  ready: pgettext("printer", "ready"), paper_out: pgettext("printer", "paper out"),
  head_open: pgettext("printer", "head open"), ribbon_out: pgettext("printer", "ribbon out"),
  paused: pgettext("printer", "paused"), offline: pgettext("printer", "offline"),
  error: pgettext("printer", "error"), unknown: pgettext("printer", "unknown"),
});
const SCALE_STATE = () => ({
  ok: pgettext("scale", "ok"), motion: pgettext("scale", "settling"), overload: pgettext("scale", "overload"),
  underload: pgettext("scale", "underload"), error: pgettext("scale", "error"), offline: pgettext("scale", "offline"),
});
const STATIC = () => ({
  // the page's fixed texts (index.html marks them data-i18n)
  "count-label-expected": pgettext("count", "expected"), "count-label-duplicate": pgettext("count", "duplicate"),
  "count-label-unknown": pgettext("count", "unknown"), "count-label-invalid": pgettext("count", "bad read"),
  "count-label-item": pgettext("count", "items"), "count-label-today": pgettext("count", "today"),
  storage: _("STORAGE FULL: new scans are not being stored. Call the supervisor."),
  offline: _("No connection to the agent: reconnecting… Results shown may be out of date."),
});

// Sounds (display.sound): each outcome its own few tones, made by Web Audio, no files. Browsers
// start audio only after a gesture: the first touch, click or key on the page unlocks it.
const TONES = {
  expected: [[880, 0.12]], item: [[1320, 0.07]], command: [[990, 0.05], [1320, 0.05]],
  duplicate: [[660, 0.09], [0, 0.05], [660, 0.09]], extra_item: [[520, 0.1], [390, 0.18]],
  unknown: [[330, 0.22], [247, 0.3]], invalid: [[196, 0.45]],
  weight: [[294, 0.15], [0, 0.06], [294, 0.15], [0, 0.06], [294, 0.15]],
  "receipt-complete": [[660, 0.09], [880, 0.09], [1100, 0.16]], "receipt-short": [[440, 0.14], [330, 0.3]],
};
let audio = null;
let played = null;
let firstState = true;
let loading = null;

function unlockAudio() {
  try {
    if (!audio) audio = new (window.AudioContext || window.webkitAudioContext)();
    if (audio.state === "suspended") audio.resume();
  } catch (e) { audio = null; }
}

function play(name) {
  if (!state || !state.station.sound || !TONES[name] || !audio || audio.state !== "running") return;
  let t = audio.currentTime + 0.01;
  for (const [freq, seconds] of TONES[name]) {
    if (freq > 0) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "square";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.25, t + 0.01);  // no click at the edges
      gain.gain.exponentialRampToValueAtTime(0.0001, t + seconds);
      osc.connect(gain).connect(audio.destination);
      osc.start(t);
      osc.stop(t + seconds + 0.02);
    }
    t += seconds;
  }
  document.body.dataset.sound = name;  // what was played last, for a person (and a test) to see
  document.body.dataset.sounds = String(Number(document.body.dataset.sounds || 0) + 1);
}

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
  // the locale's own words for "12 s ago" (Intl, from the browser's CLDR data)
  if (seconds == null) return "";
  const rtf = new Intl.RelativeTimeFormat(LANG, { numeric: "always", style: "short" });
  if (seconds < 60) return rtf.format(-Math.floor(seconds), "second");
  if (seconds < 3600) return rtf.format(-Math.floor(seconds / 60), "minute");
  return rtf.format(-Math.floor(seconds / 3600), "hour");
}

function grams(g) {
  return g == null ? "?" : `${new Intl.NumberFormat(LANG).format(Math.round(g))} g`;
}

function weightReason(detail) {
  // the agent's reasons (scales/weighing.py), in the station's language
  if (!detail) return _("no stable weight");
  if (detail === "the scale is offline") return _("the scale is offline");
  if (detail === "nothing on the scale") return _("nothing on the scale");
  const reports = /^the scale reports (\w+)$/.exec(detail);
  if (reports) {
    return { overload: _("the scale reports an overload"), underload: _("the scale reports an underload") }[reports[1]]
      || _("the scale reports an error");
  }
  const within = /^no stable weight within (\d+) ms$/.exec(detail);
  if (within) return _("no stable weight within {ms} ms", { ms: within[1] });
  return LANG === "en" ? detail : _("no stable weight");
}

function renderWeight(last, main) {
  // a parcel's weight (mqtt.md "Scales"): light or heavy takes the whole result's colour
  const w = last && last.weight;
  const el = $("weight");
  el.hidden = !w;
  if (!w) return;
  el.dataset.check = w.check;
  const args = { weight: grams(w.grams), expected: grams(w.expected_g) };
  if (w.check === "light" || w.check === "heavy") {
    main.dataset.outcome = `weight_${w.check}`;
    text("verdict", w.check === "light" ? _("TOO LIGHT") : _("TOO HEAVY"));
    text("hint", _("Open the parcel and check what is inside"));
    text("weight", _("weighs {weight}, expected about {expected}: check the contents", args));
  } else if (w.check === "ok") {
    text("weight", _("weighs {weight} (expected about {expected})", args));
  } else if (last.weighing) {
    text("weight", _("weighing…"));
  } else if (w.stable) {
    text("weight", _("weighs {weight} (no weight on record for this return)", args));
  } else {
    text("weight", _("weight not checked: {reason}", { reason: weightReason(w.detail) }));
  }
}

function renderLast(last) {
  const main = $("result");
  const outcome = last ? last.outcome : "idle";
  main.dataset.outcome = outcome;
  text("verdict", VERDICT()[outcome] || String(outcome).toUpperCase());
  const ret = last && last.return;
  const hints = HINT();
  let hint = typeof hints[outcome] === "string" ? hints[outcome] : "";
  if (outcome === "expected") hint = hints.expected[last.mode] || _("Expected return");
  // the decoder's reason is technical English: shown to an English page only
  if (outcome === "invalid" && last.error && LANG === "en") hint = `${hints.invalid} (${last.error})`;
  if (outcome === "command" && last.command) {
    hint = last.command.name === "mode"
      ? _("Mode changed to {mode}", { mode: modeName(last.command.value).toLocaleUpperCase(LANG) })
      : _("Command {name} {value}", { name: last.command.name, value: last.command.value || "" });
  }
  text("hint", hint);
  text("order", ret ? ret.order_number : "");
  text("customer", ret ? customerName(ret.customer) : "");
  text("bin", ret && ret.bin ? _("Bin {bin}", { bin: ret.bin }) : "");
  renderWeight(last, main);
  const items = $("items");
  items.replaceChildren();
  for (const item of (ret && ret.items) || []) {
    const li = document.createElement("li");
    li.append(`${item.qty || 1} × ${item.name || item.sku || _("item")} `);
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
  if (last) {
    // a sound for each new result: a scan, its weight verdict arriving later, a receipt's close;
    // none for what was already on the page when it loaded
    const name = soundOf(last, main.dataset.outcome);
    const key = `${last.seq}:${name}`;
    if (!firstState && key !== played) play(name);
    played = key;
  }
  firstState = false;
  tick();
}

function soundOf(last, shown) {
  if (shown === "weight_light" || shown === "weight_heavy") return "weight";
  if (shown && shown.startsWith("receipt-")) return shown === "receipt-complete" ? shown : "receipt-short";
  return last.outcome;
}

function modeName(mode) {
  return MODE()[mode] || String(mode || "?");
}

function lineName(line) {
  return line ? line.name || line.sku || line.gtin || _("item") : _("item");
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
    text("verdict", VERDICT().item);
    text("hint", _("{name}: {received} of {expected}",
                   { name: lineName(line), received: line.received_qty, expected: line.expected_qty }) +
         (last.qty > 1 ? ` (+${last.qty})` : "") + (last.grade ? ` · ${_("grade {grade}", { grade: last.grade })}` : ""));
    if (last.seq !== shownSeq) touchedLine = last.receipt.line;
  } else if (onThis && outcome === "extra_item") {
    text("verdict", EXTRA()[last.reason] || VERDICT().extra_item);
    text("hint", EXTRA_HINT()[last.reason] || "");
  } else if (onThis && outcome === "command" && last.command) {
    text("verdict", last.command.name === "grade" ? _("GRADE {grade}", { grade: last.command.value })
                  : last.command.name === "qty" ? _("NEXT ITEM × {qty}", { qty: last.command.value })
                  : VERDICT().command);
    text("hint", _("Scan the next item"));
  }
  text("receipt-return", _("Return {id}", { id: receipt.return_id }) +
       (receipt.order_number ? ` · ${receipt.order_number}` : ""));
  text("receipt-grade", _("grade {grade}", { grade: receipt.grade }));
  const qty = $("receipt-qty");
  qty.hidden = !receipt.pending_qty;
  text("receipt-qty", receipt.pending_qty ? _("next × {qty}", { qty: receipt.pending_qty }) : "");
  const got = receipt.lines.reduce((n, l) => n + l.received_qty, 0);
  const want = receipt.lines.reduce((n, l) => n + l.expected_qty, 0);
  text("receipt-progress", `${got}/${want}` +
       (receipt.extra ? ` ${ngettext("+{n} extra", "+{n} extra", receipt.extra)}` : ""));
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
        ? ngettext("{n} missing", "{n} missing", line.expected_qty - line.received_qty) : _("missing")],
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
    pager.textContent = _("page {page} of {pages} ▸", { page: 1, pages: 2 });
    perPage = Math.max(1, Math.floor(list.clientHeight / rowHeight));
  }
  const pages = Math.ceil(rows.length / perPage);
  if (fresh && touchedLine != null) checklistPage = Math.floor(touchedLine / perPage);
  if (checklistPage >= pages) checklistPage = 0;
  rows.forEach((r, i) => { r.hidden = Math.floor(i / perPage) !== checklistPage; });
  pager.hidden = pages < 2;
  pager.textContent = pages < 2 ? "" : _("page {page} of {pages} ▸", { page: checklistPage + 1, pages });
  list.dataset.pages = String(pages);
  list.dataset.perPage = String(perPage);
  if (fresh) pageTurnedAt = Date.now();
}

function renderClosed(closed) {
  const main = $("result");
  main.dataset.outcome = `receipt-${closed.verdict}`;
  text("verdict", CLOSED()[closed.verdict] || String(closed.verdict).toUpperCase());
  let hint = ngettext("Return {id}: {received} of {n} item", "Return {id}: {received} of {n} items",
                      closed.expected, { id: closed.return_id, received: closed.received });
  if (closed.extra) hint += `, ${ngettext("{n} not expected", "{n} not expected", closed.extra)}`;
  text("hint", hint);
  text("order", closed.order_number || "");
  text("customer", "");
  $("items").replaceChildren();
  const missing = $("missing");
  // at most five lines, then how many more: a summary is read at a glance, never cut off
  const shown = closed.missing.length > 6 ? closed.missing.slice(0, 5) : closed.missing;
  const rows = shown.map((m) => _("missing {n} × {name}", { n: m.missing, name: m.name || m.sku || _("item") }));
  const more = closed.missing.length - shown.length;
  if (more > 0) rows.push(ngettext("… and {n} more line", "… and {n} more lines", more));
  missing.replaceChildren(...rows.map((row) => {
    const li = document.createElement("li");
    li.textContent = row;
    return li;
  }));
  missing.hidden = closed.missing.length === 0;
}

function renderHealth(s) {
  text("title", s.station.title);
  document.title = _("Dock station {title}", { title: s.station.title });
  const mode = $("mode");
  mode.dataset.mode = s.mode || "";
  text("mode", modeName(s.mode));
  const broker = $("broker");
  broker.dataset.state = s.broker.connected ? "connected" : "disconnected";
  text("broker", s.broker.connected ? _("central: online") : _("central: OFFLINE (scans kept)"));
  const outbox = $("outbox");
  outbox.dataset.warn = s.outbox.depth > 0 ? "yes" : "no";
  text("outbox", s.outbox.depth > 0 ? _("to send: {n}", { n: s.outbox.depth }) : _("all sent"));
  for (const outcome of ["expected", "duplicate", "unknown", "invalid", "item"]) {
    text(`count-${outcome}`, s.today.counts[outcome] || 0);
  }
  const devices = [];
  for (const sc of s.scanners) {
    devices.push(device(_("scanner {id}", { id: sc.id }),
      sc.connected ? pgettext("scanner", "ok") : pgettext("scanner", "disconnected"), sc.connected));
  }
  $("scanners").replaceChildren(...devices);
  const printerStates = PRINTER_STATE();
  $("printers").replaceChildren(...s.printers.map(
    (p) => device(_("printer {id}", { id: p.id }), printerStates[p.state] || p.state, p.state === "ready")));
  const scales = s.scales || [];
  const scaleStates = SCALE_STATE();
  $("scales").replaceChildren(...scales.map((sc) => {
    const stateText = scaleStates[sc.state] || sc.state;
    return device(_("scale {id}", { id: sc.id }), sc.grams != null ? `${stateText} ${grams(sc.grams)}` : stateText,
                  sc.state === "ok" || sc.state === "motion");
  }));
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
  if (s.station.language && s.station.language !== LANG && loading !== s.station.language) {
    loading = s.station.language;  // the language was changed: the page follows
    loadMessages(loading).finally(() => { loading = null; });
  }
  clockOffsetMs = s.server_time_ms - Date.now();
  renderHealth(s);
  renderLast(s.last);
}

function tick() {
  const now = new Date(Date.now() + clockOffsetMs);
  text("clock", now.toLocaleTimeString(LANG, { hour: "2-digit", minute: "2-digit" }));
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
  const where = [`#${last.seq}`, _("scanner {id}", { id: last.scanner }), last.mode && modeName(last.mode),
                 ageText(seconds), printable(last.raw)];
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

function applyStatic() {
  document.documentElement.lang = LANG;
  for (const [id, value] of Object.entries(STATIC())) {
    const el = $(id);
    if (el) el.textContent = value;
  }
}

async function loadMessages(lang) {
  // the station's catalog, before the first state is shown; English needs none
  const token = new URLSearchParams(window.location.search).get("token");
  const query = `lang=${encodeURIComponent(lang || "")}` + (token ? `&token=${encodeURIComponent(token)}` : "");
  try {
    const response = await fetch(`messages.json?${query}`, { cache: "no-store" });
    const catalog = await response.json();
    MESSAGES = catalog.messages || {};
    LANG = catalog.lang || "en";
  } catch (e) {
    return false;  // the agent is restarting: the state stream's reconnect tries again
  }
  applyStatic();
  if (state) {
    renderHealth(state);
    renderLast(state.last);
  }
  return true;
}

for (const gesture of ["pointerdown", "touchstart", "keydown"]) {
  window.addEventListener(gesture, unlockAudio, { passive: true });
}
LANG = document.documentElement.lang || "en";
loadMessages(LANG).finally(connect);
setInterval(tick, 1000);
window.addEventListener("resize", () => paginate(false));
