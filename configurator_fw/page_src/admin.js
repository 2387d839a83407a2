"use strict";
// The box's admin page (docs/ADMIN.md). Plain JS, no library: every text from the box is shown
// with textContent, never as HTML (a device's status is the device's own words).
let csrf = null, timer = null, box = "";
const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function say(id, text, bad) {
  const m = $(id);
  m.textContent = text || "";
  m.className = "msg" + (bad ? " bad" : text ? " ok" : "");
}

async function api(path, body) {
  const opt = {method: body === undefined ? "GET" : "POST", credentials: "same-origin",
               headers: {}};
  if (body !== undefined) {
    opt.headers["Content-Type"] = "application/json";
    if (csrf) opt.headers["X-CSRF-Token"] = csrf;
    opt.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch("/admin/api/" + path, opt);
  } catch (e) {
    return {status: 0, data: {error: "the box does not answer (" + e.message + ")"}};
  }
  let data = {};
  try { data = await r.json(); } catch (e) { data = {error: "unreadable answer"}; }
  if (r.status === 401 && path !== "login") showLogin(data.error === "sealed" ?
      "The box is sealed: unlock it." : "Your session ended: log in again.");
  return {status: r.status, data: data};
}

function ago(t, now) {
  if (!t) return "never";
  const s = now - t;
  if (s < 0) return "just now";
  if (s < 90) return s + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  if (s < 129600) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

// ---- login / unlock
function showLogin(why) {
  csrf = null;
  if (timer) clearInterval(timer);
  timer = null;
  $("main").hidden = true;
  $("login").hidden = false;
  if (why) say("login-msg", why, true);
  loginState();
}

// the login box says what the box is now: sealed (the passphrase unlocks it) or unlocked
async function loginState() {
  const r = await api("session");
  if (r.status !== 200) { say("login-msg", r.data.error || "no answer", true); return null; }
  box = r.data.box;
  $("box-id").textContent = box;
  $("login-state").textContent = r.data.sealed ? "sealed: the passphrase unlocks it"
                                               : "unlocked: log in";
  $("login-btn").textContent = r.data.sealed ? "Unlock" : "Log in";
  return r.data;
}

async function start() {
  const state = await loginState();
  if (state && state.logged_in) { csrf = state.csrf; showMain(state); }
  else if (state) { $("main").hidden = true; $("login").hidden = false; }
}

async function login(ev) {
  ev.preventDefault();
  say("login-msg", "Checking the passphrase (up to 10 s on the box)...");
  $("login-btn").disabled = true;
  const body = {passphrase: $("login-pass").value, time: Math.floor(Date.now() / 1000)};
  let r = await api("login", body);
  if (r.status === 409 && confirm(r.data.error + "\n\nUnlock and set the box's clock to it?")) {
    say("login-msg", "Unlocking with this computer's time...");
    r = await api("login", Object.assign(body, {confirm_time: true}));
  }
  $("login-btn").disabled = false;
  if (r.status !== 200) { say("login-msg", r.data.error || "refused", true); return; }
  $("login-pass").value = "";
  say("login-msg", "");
  csrf = r.data.csrf;
  const s = await api("session");
  showMain(s.data);
}

function showMain(state) {
  $("login").hidden = true;
  $("main").hidden = false;
  $("ssid").textContent = state.ssid || "";
  $("auto").checked = !!state.auto_unseal;
  refresh();
  loadConfig();
  if (!timer) timer = setInterval(refresh, 3000);
}

// ---- the fleet: a page at a time, the box filters, searches and sorts
const PER = 50;
let fleetPage = 0;

function fleetQuery() {
  const q = new URLSearchParams({page: fleetPage, per: PER, state: $("f-state").value,
                                 sort: $("f-sort").value});
  const text = $("f-q").value.trim();
  if (text) q.set("q", text);
  return "fleet?" + q.toString();
}

function fleetAgain(first) {
  if (first) fleetPage = 0;
  refresh();
}

async function refresh() {
  if (!csrf) return;
  const r = await api(fleetQuery());
  if (r.status !== 200) { if (r.data.error) say("fleet-msg", r.data.error, true); return; }
  const f = r.data;
  const c = f.counts, parts = [];
  let n = 0;
  for (const k of Object.keys(c).sort()) { n += c[k]; parts.push(c[k] + " " + k); }
  const x = f.flags;
  $("counts").textContent = n + " devices" + (parts.length ? ": " + parts.join(", ") : "") +
      "; " + x.failed + " failed, " + x.behind + " behind, " + x.never + " never seen, " +
      x.locked + " locked out; fleet config version " + f.rev;
  $("flash").textContent = f.flash.free + " of the flash's blocks free (" +
      (f.flash.block / 1024) + " KB each): room for " + f.flash.more + " more devices; heap " +
      Math.round(f.mem.free / 1024) + " KB free of " +
      Math.round((f.mem.free + f.mem.used) / 1024) + " KB";
  $("clock").textContent = f.clock_ok ? "box clock " + new Date(f.now * 1000).toISOString()
      : "box clock NOT set: devices wait until it is (set it below)";
  $("clock").className = f.clock_ok ? "" : "bad";
  const pages = Math.max(1, Math.ceil(f.total / f.per));
  if (fleetPage >= pages && f.total) { fleetPage = pages - 1; return refresh(); }
  $("f-page").textContent = "page " + (f.page + 1) + " of " + pages + " (" + f.total +
      " shown of " + n + ")";
  $("f-prev").disabled = f.page === 0;
  $("f-next").disabled = f.page + 1 >= pages;
  const tb = $("devices").tBodies[0];
  tb.textContent = "";
  for (const d of f.devices) {
    const tr = el("tr");
    tr.dataset.dev = d.dev;
    tr.dataset.state = d.state;
    const cur = d.ack === d.ver ? "current" : "behind";
    tr.append(el("td", d.dev), el("td", d.state + (d.locked ? " (locked " + d.locked + " s)" : ""),
                                  "st-" + d.state),
              el("td", ago(d.seen, f.now)),
              el("td", (d.ack || "-") + " / " + d.ver, d.ack ? cur : ""), el("td", d.ip || ""),
              el("td", d.err || "", d.err ? "bad" : ""),
              el("td", d.heap == null ? "" : Math.round(d.heap / 1024) + " KB"),
              el("td", d.rssi == null ? "" : d.rssi + " dBm"));
    const act = el("td");
    if (d.state !== "revoked") act.append(button("Revoke", () => revoke(d.dev), "revoke"));
    act.append(button("Re-key", () => enroll(d.dev, true), "rekey"));
    act.append(button("Config", () => { $("cfg-target").value = d.dev; loadConfig(); }, "cfg"));
    tr.append(act);
    tb.append(tr);
  }
  loadAudit();
}

function button(text, fn, cls) {
  const b = el("button", text, cls);
  b.type = "button";
  b.addEventListener("click", fn);
  return b;
}

async function revoke(dev) {
  if (!confirm("Revoke " + dev + "? It will never authenticate again until re-keyed.")) return;
  const r = await api("revoke", {dev: dev});
  say("fleet-msg", r.status === 200 ? dev + " revoked" : r.data.error, r.status !== 200);
  refresh();
}

async function enroll(dev, rekey) {
  const r = await api(rekey ? "rekey" : "enroll", {dev: dev});
  if (r.status !== 200) { say("enroll-msg", r.data.error, true); return; }
  say("enroll-msg", (rekey ? "New secrets for " : "Enrolled ") + dev +
      ": write them to the device now, they are not shown again.");
  const out = $("enroll-out");
  out.hidden = false;
  $("boot-json").textContent = JSON.stringify(r.data.bootstrap);
  $("totp-b32").textContent = r.data.totp_b32;
  $("otp-uri").textContent = r.data.uri;
  drawQr($("qr"), r.data.uri);
  refresh();
}

// ---- config
async function loadConfig() {
  const dev = $("cfg-target").value;
  const r = await api("config" + (dev ? "?dev=" + encodeURIComponent(dev) : ""));
  if (r.status !== 200) { say("cfg-msg", r.data.error, true); return; }
  $("cfg-text").value = JSON.stringify(r.data.config, null, 2);
  say("cfg-msg", (dev ? "Overrides of " + dev : "Fleet defaults") + ", version " + r.data.rev +
      ". Secrets show as ******** and keep their value unless you type a new one.");
}

async function showMerged() {
  const dev = $("cfg-target").value;
  if (!dev) { say("cfg-msg", "Name a device: what it receives is the defaults and its overrides merged.", true); return; }
  const r = await api("config?dev=" + encodeURIComponent(dev) + "&merged=1");
  if (r.status !== 200) { say("cfg-msg", r.data.error, true); return; }
  const pre = $("cfg-merged-text");
  pre.textContent = JSON.stringify(r.data.config, null, 2);
  pre.hidden = false;
  say("cfg-msg", dev + " receives version " + r.data.rev + ": " + r.data.size + " of " +
      r.data.cap + " bytes (defaults and its overrides merged; secrets show as ********).");
}

async function saveConfig() {
  const dev = $("cfg-target").value;
  let obj;
  try { obj = JSON.parse($("cfg-text").value); } catch (e) {
    say("cfg-msg", "Not valid JSON: " + e.message, true); return;
  }
  const r = await api(dev ? "overrides" : "defaults", dev ? {dev: dev, config: obj} : {config: obj});
  if (r.status !== 200) { say("cfg-msg", r.data.error, true); return; }
  say("cfg-msg", "Saved: " + (dev ? dev + "'s config" : "every device's config") +
      " is now version " + r.data.rev + "; devices pick it up at their next check.");
  refresh();
}

// ---- box
async function setClock() {
  const body = {time: Math.floor(Date.now() / 1000)};
  let r = await api("clock", body);
  if (r.status === 409 && confirm(r.data.error + "\n\nSet the box's clock to it?"))
    r = await api("clock", Object.assign(body, {confirm_time: true}));
  say("box-msg", r.status === 200 ? "Clock set from this browser." : r.data.error, r.status !== 200);
  refresh();
}

async function changePass() {
  const r = await api("passphrase", {old: $("pass-old").value, new: $("pass-new").value});
  say("box-msg", r.status === 200 ? "Passphrase changed: the box is sealed under the new one."
      : r.data.error, r.status !== 200);
  if (r.status === 200) { $("pass-old").value = ""; $("pass-new").value = ""; }
}

async function generate() {
  const r = await api("generate");
  if (r.status === 200) { $("pass-new").value = r.data.passphrase; $("pass-new").type = "text"; }
}

async function setAuto() {
  const on = $("auto").checked;
  if (on && !confirm("With auto-unseal the box opens itself at power-on: whoever takes it " +
                     "takes every secret. Turn it on?")) { $("auto").checked = false; return; }
  const r = await api("auto-unseal", {on: on});
  say("box-msg", r.status === 200 ? "Auto-unseal " + (on ? "on" : "off") : r.data.error,
      r.status !== 200);
}

async function lockBox() {
  const r = await api("lock", {});
  showLogin(r.status === 200 ? "The box is sealed: devices get 503 until it is unlocked." : "");
}

async function logout() {
  await api("logout", {});
  showLogin("Logged out.");
}

async function loadAudit() {
  const r = await api("audit");
  if (r.status !== 200) return;
  const ul = $("audit");
  ul.textContent = "";
  for (const e of r.data.entries) {
    const li = el("li");
    li.append(el("time", new Date(e.t * 1000).toISOString().replace(".000Z", "Z")),
              el("b", " " + e.event + " "), el("span", e.detail));
    ul.append(li);
  }
}

// ---- QR code (ISO/IEC 18004): byte mode, error correction M, versions 1-10, drawn as SVG
const QR_ECC = [0, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26];
const QR_BLOCKS = [0, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5];

function qrRawModules(v) {
  let r = (16 * v + 128) * v + 64;
  if (v >= 2) {
    const na = Math.floor(v / 7) + 2;
    r -= (25 * na - 10) * na - 55;
    if (v >= 7) r -= 36;
  }
  return r;
}

function qrDataCodewords(v) { return Math.floor(qrRawModules(v) / 8) - QR_ECC[v] * QR_BLOCKS[v]; }

function gfMul(x, y) {
  let z = 0;
  for (let i = 7; i >= 0; i--) {
    z = (z << 1) ^ ((z >>> 7) * 0x11d);
    z ^= ((y >>> i) & 1) * x;
  }
  return z & 0xff;
}

function rsDivisor(degree) {
  const r = new Array(degree).fill(0);
  r[degree - 1] = 1;
  let root = 1;
  for (let i = 0; i < degree; i++) {
    for (let j = 0; j < r.length; j++) {
      r[j] = gfMul(r[j], root);
      if (j + 1 < r.length) r[j] ^= r[j + 1];
    }
    root = gfMul(root, 0x02);
  }
  return r;
}

function rsRemainder(data, div) {
  const r = new Array(div.length).fill(0);
  for (const b of data) {
    const f = b ^ r.shift();
    r.push(0);
    for (let i = 0; i < div.length; i++) r[i] ^= gfMul(div[i], f);
  }
  return r;
}

function qrAlignment(v) {
  if (v === 1) return [];
  const n = Math.floor(v / 7) + 2;
  const step = Math.ceil((v * 4 + 4) / (n * 2 - 2)) * 2;
  const out = [6];
  for (let pos = v * 4 + 10; out.length < n; pos -= step) out.splice(1, 0, pos);
  return out;
}

// The module matrix (rows of booleans, true = dark) for `text`; `forceMask` 0-7 or undefined
// (the mask with the lowest penalty, as the standard says).
function qrMatrix(text, forceMask) {
  const bytes = new TextEncoder().encode(text);
  let v = 1;
  for (; v <= 10; v++) if (4 + (v < 10 ? 8 : 16) + bytes.length * 8 <= qrDataCodewords(v) * 8) break;
  if (v > 10) throw new Error("too long for a QR code of version 10");
  const bits = [];
  const put = (val, n) => { for (let i = n - 1; i >= 0; i--) bits.push((val >>> i) & 1); };
  put(4, 4);
  put(bytes.length, v < 10 ? 8 : 16);
  for (const b of bytes) put(b, 8);
  const cap = qrDataCodewords(v) * 8;
  put(0, Math.min(4, cap - bits.length));
  put(0, (8 - bits.length % 8) % 8);
  for (let p = 0xec; bits.length < cap; p ^= 0xec ^ 0x11) put(p, 8);
  const data = [];
  for (let i = 0; i < bits.length; i += 8) {
    let b = 0;
    for (let j = 0; j < 8; j++) b = (b << 1) | bits[i + j];
    data.push(b);
  }
  const nb = QR_BLOCKS[v], ecl = QR_ECC[v], raw = Math.floor(qrRawModules(v) / 8);
  const nShort = nb - raw % nb, shortLen = Math.floor(raw / nb), div = rsDivisor(ecl);
  const blocks = [];
  for (let i = 0, k = 0; i < nb; i++) {
    const dat = data.slice(k, k + shortLen - ecl + (i < nShort ? 0 : 1));
    k += dat.length;
    const ecc = rsRemainder(dat, div);
    if (i < nShort) dat.push(0);
    blocks.push(dat.concat(ecc));
  }
  const cw = [];
  for (let i = 0; i < blocks[0].length; i++)
    for (let j = 0; j < blocks.length; j++)
      if (i !== shortLen - ecl || j >= nShort) cw.push(blocks[j][i]);

  const n = v * 4 + 17;
  const m = [], fn = [];
  for (let y = 0; y < n; y++) { m.push(new Array(n).fill(false)); fn.push(new Array(n).fill(false)); }
  const set = (x, y, d) => { m[y][x] = d; fn[y][x] = true; };
  for (let i = 0; i < n; i++) { set(6, i, i % 2 === 0); set(i, 6, i % 2 === 0); }
  const finder = (cx, cy) => {
    for (let dy = -4; dy <= 4; dy++) for (let dx = -4; dx <= 4; dx++) {
      const d = Math.max(Math.abs(dx), Math.abs(dy)), x = cx + dx, y = cy + dy;
      if (x >= 0 && x < n && y >= 0 && y < n) set(x, y, d !== 2 && d !== 4);
    }
  };
  finder(3, 3); finder(n - 4, 3); finder(3, n - 4);
  const al = qrAlignment(v);
  for (let i = 0; i < al.length; i++) for (let j = 0; j < al.length; j++) {
    if ((i === 0 && j === 0) || (i === 0 && j === al.length - 1) || (i === al.length - 1 && j === 0)) continue;
    for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++)
      set(al[i] + dx, al[j] + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
  }
  const drawFormat = (g, mask) => {  // into grid g (level M's two bits are 00)
    let rem = mask;
    for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
    const f = ((mask << 10) | rem) ^ 0x5412;
    const put = (x, y, i) => { g[y][x] = ((f >>> i) & 1) !== 0; fn[y][x] = true; };
    for (let i = 0; i <= 5; i++) put(8, i, i);
    put(8, 7, 6); put(8, 8, 7); put(7, 8, 8);
    for (let i = 9; i < 15; i++) put(14 - i, 8, i);
    for (let i = 0; i < 8; i++) put(n - 1 - i, 8, i);
    for (let i = 8; i < 15; i++) put(8, n - 15 + i, i);
    g[n - 8][8] = true; fn[n - 8][8] = true;
  };
  drawFormat(m, 0);
  if (v >= 7) {
    let rem = v;
    for (let i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1f25);
    const b = (v << 12) | rem;
    for (let i = 0; i < 18; i++) {
      const d = ((b >>> i) & 1) !== 0, a = n - 11 + i % 3, c = Math.floor(i / 3);
      set(a, c, d); set(c, a, d);
    }
  }
  let k = 0;
  for (let right = n - 1; right >= 1; right -= 2) {
    if (right === 6) right = 5;
    for (let vert = 0; vert < n; vert++) for (let j = 0; j < 2; j++) {
      const x = right - j, up = ((right + 1) & 2) === 0, y = up ? n - 1 - vert : vert;
      if (!fn[y][x] && k < cw.length * 8) { m[y][x] = ((cw[k >>> 3] >>> (7 - (k & 7))) & 1) !== 0; k++; }
    }
  }
  const MASKS = [(x, y) => (x + y) % 2 === 0, (x, y) => y % 2 === 0, (x, y) => x % 3 === 0,
    (x, y) => (x + y) % 3 === 0, (x, y) => (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0,
    (x, y) => x * y % 2 + x * y % 3 === 0, (x, y) => (x * y % 2 + x * y % 3) % 2 === 0,
    (x, y) => ((x + y) % 2 + x * y % 3) % 2 === 0];
  const masked = (mask) => {
    const out = m.map((row, y) => row.map((d, x) => fn[y][x] ? d : d !== MASKS[mask](x, y)));
    drawFormat(out, mask);
    return out;
  };
  if (forceMask !== undefined) return masked(forceMask);
  let best = null, bestScore = Infinity;
  for (let mask = 0; mask < 8; mask++) {
    const q = masked(mask), s = qrPenalty(q);
    if (s < bestScore) { best = q; bestScore = s; }
  }
  return best;
}

function qrPenalty(q) {
  const n = q.length;
  let s = 0, dark = 0;
  const line = (get) => {
    for (let i = 0; i < n; i++) {
      let run = 1;
      const seq = [];
      for (let j = 0; j < n; j++) seq.push(get(i, j) ? 1 : 0);
      for (let j = 1; j <= n; j++) {
        if (j < n && seq[j] === seq[j - 1]) run++;
        else { if (run >= 5) s += run - 2; run = 1; }
      }
      const str = seq.join("");
      for (const pat of ["10111010000", "00001011101"]) {
        let at = str.indexOf(pat);
        while (at >= 0) { s += 40; at = str.indexOf(pat, at + 1); }
      }
    }
  };
  line((i, j) => q[i][j]);
  line((i, j) => q[j][i]);
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
    if (q[y][x]) dark++;
    if (x < n - 1 && y < n - 1 && q[y][x] === q[y][x + 1] && q[y][x] === q[y + 1][x] &&
        q[y][x] === q[y + 1][x + 1]) s += 3;
  }
  const total = n * n;
  s += 10 * (Math.ceil(Math.abs(dark * 20 - total * 10) / total) - 1);
  return s;
}

function drawQr(holder, text) {
  const q = qrMatrix(text), n = q.length, NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "-4 -4 " + (n + 8) + " " + (n + 8));
  svg.setAttribute("width", String((n + 8) * 5));
  svg.setAttribute("height", String((n + 8) * 5));
  svg.setAttribute("shape-rendering", "crispEdges");
  svg.dataset.size = String(n);
  const bg = document.createElementNS(NS, "rect");
  bg.setAttribute("x", "-4"); bg.setAttribute("y", "-4");
  bg.setAttribute("width", String(n + 8)); bg.setAttribute("height", String(n + 8));
  bg.setAttribute("fill", "#fff");
  svg.append(bg);
  let d = "";
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) if (q[y][x]) d += "M" + x + " " + y + "h1v1h-1z";
  const p = document.createElementNS(NS, "path");
  p.setAttribute("d", d);
  p.setAttribute("fill", "#000");
  svg.append(p);
  holder.textContent = "";
  holder.append(svg);
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  $("enroll-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    enroll($("enroll-id").value.trim(), false);
  });
  $("cfg-load").addEventListener("click", loadConfig);
  $("f-state").addEventListener("change", () => fleetAgain(true));
  $("f-sort").addEventListener("change", () => fleetAgain(true));
  $("f-q").addEventListener("input", () => fleetAgain(true));
  $("f-prev").addEventListener("click", () => { fleetPage = Math.max(0, fleetPage - 1); refresh(); });
  $("f-next").addEventListener("click", () => { fleetPage += 1; refresh(); });
  $("cfg-save").addEventListener("click", saveConfig);
  $("cfg-merged").addEventListener("click", showMerged);
  $("clock-btn").addEventListener("click", setClock);
  $("pass-btn").addEventListener("click", changePass);
  $("gen-btn").addEventListener("click", generate);
  $("auto").addEventListener("change", setAuto);
  $("lock-btn").addEventListener("click", lockBox);
  $("logout-btn").addEventListener("click", logout);
  start();
});
