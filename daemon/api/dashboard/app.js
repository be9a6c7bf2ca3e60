// posd dashboard: reads a few small /v1 routes once, then follows the
// node's event stream (/v1/events?summary=1: one block summary per new head,
// never the transactions; "justified" and "finalized" events). Finality
// comes from /v1/status and /v1/finality; a node without finality (501)
// shows none of it. Everything is written with textContent.
"use strict";

const WINDOW = 100;        // blocks in the forged-share chart
const KEEP = 300;          // block summaries kept for the throughput chart
const SHOWN = 15;          // rows of the newest-blocks table
const TPUT_MINUTES = 5, TPUT_BUCKET_S = 10;

const st = { status: null, genesis: null, stakes: [], peers: [], blocks: [], me: "", evidence: null, finality: null };
const $ = id => document.getElementById(id);
const short = a => !a ? "–" : a.length > 12 ? a.slice(0, 6) + "…" + a.slice(-4) : a;
const pct = x => (x * 100).toFixed(x > 0 && x < 0.1 ? 1 : 0) + "%";

async function get(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  return Math.floor(s / 3600) + " h ago";
}

// addBlocks merges summaries (ascending) into st.blocks; a lower height than
// the newest means a reorg replaced the blocks from there on.
function addBlocks(list) {
  for (const b of list) {
    while (st.blocks.length && st.blocks[st.blocks.length - 1].height >= b.height) st.blocks.pop();
    b.fresh = true;
    st.blocks.push(b);
  }
  if (st.blocks.length > KEEP) st.blocks.splice(0, st.blocks.length - KEEP);
}

// forgedWindow is the newest WINDOW forged blocks (block 0 has no forger).
const forgedWindow = () => st.blocks.filter(b => b.height > 0).slice(-WINDOW);

// offline returns the stakers passed over in the window who forged nothing
// in it: elected, but not there.
function offline() {
  const passed = new Map(), forged = new Set();
  for (const b of forgedWindow()) {
    forged.add(b.forger);
    for (const a of b.passed_over || []) passed.set(a, (passed.get(a) || 0) + 1);
  }
  const out = new Map();
  for (const [a, n] of passed) if (!forged.has(a)) out.set(a, n);
  return out;
}

// restNote explains a head that has not moved for two slots while nothing
// is pending here: the chain rests by design, it is not stuck.
function restNote(s, g, now) {
  const slot = (g && g.slot_ms) || 2000;
  if (!s || s.pending > 0 || now - s.head_timestamp < 2 * slot) return "";
  return g && g.heartbeat
    ? "The chain rests: no pending transactions, and heartbeat blocks stop once the newest payment is 64 blocks deep."
    : "The chain rests: blocks are forged only for pending transactions.";
}

// finalMark is a block's finality on the status s: "final" at or below the
// finalized height, "justified" at the justified checkpoint, else "" (also
// on a node that does not report finality).
function finalMark(height, s) {
  if (!s || s.finalized_height == null) return "";
  if (height <= s.finalized_height) return "final";
  if (height === s.justified_height) return "justified";
  return "";
}

// stallText is the banner's sentence when the status says finality
// stalls, else "".
function stallText(s) {
  const f = s && s.finality_stalled;
  if (!f) return "";
  const pctMissing = f.missing_percent != null ? Math.round(f.missing_percent) : (f.total_lots ? Math.round(100 * f.missing_lots / f.total_lots) : 0);
  return pctMissing + "% of the stake is not voting (" + (f.missing_lots || 0).toLocaleString() + " of " + (f.total_lots || 0).toLocaleString() +
    " lots, " + (f.missing_stake || 0).toLocaleString() + " staked): nothing new becomes final until enough of it votes. Blocks go on; the final block is " +
    (f.behind || 0).toLocaleString() + " behind the head.";
}

// voteShare is how far checkpoint c's votes are toward all lots (0..1),
// whether they reach 2/3, and the sentence under the bar.
function voteShare(c) {
  if (!c) return { share: 0, reached: false, text: "" };
  const total = c.total_lots || 0, voted = c.voted_lots || 0;
  const share = total ? Math.min(1, voted / total) : 0;
  const reached = !!c.justified || (total > 0 && voted >= (c.threshold_lots || Infinity));
  let text = voted.toLocaleString() + " of " + total.toLocaleString() + " lots voted (" + pct(share) + ")";
  if (c.final) text += ": final";
  else if (reached) text += ": justified";
  else text += "; 2/3 needs " + (c.threshold_lots || 0).toLocaleString() + ", " + Math.max(0, (c.threshold_lots || 0) - voted).toLocaleString() + " more";
  return { share, reached, text };
}

function renderFinality() {
  const s = st.status, f = st.finality;
  const has = !!(s && s.finalized_height != null);
  $("final-card").hidden = !has;
  if (has) {
    $("final").textContent = s.finalized_height.toLocaleString();
    $("final-note").textContent = (s.height - s.finalized_height) + " behind the head · justified " + (s.justified_height ?? "–");
  }
  const banner = $("stalled"), stall = stallText(s);
  banner.hidden = !stall;
  $("stalled-text").textContent = stall;
  const ul = $("stalled-missing");
  ul.replaceChildren();
  for (const m of (stall && s.finality_stalled.missing) || []) {
    const li = el("li", "", short(m.address) + " · " + (m.stake || 0).toLocaleString() + " staked, not voting");
    li.title = m.address;
    ul.append(li);
  }
  const sec = $("finality");
  const cp = f && f.checkpoints && f.checkpoints[0];
  sec.hidden = !cp;
  if (!cp) return;
  $("fin-target").textContent = cp.height.toLocaleString();
  const v = voteShare(cp);
  const bar = $("fin-bar");
  bar.classList.toggle("justified", v.reached);
  bar.querySelector(".fill").style.width = (v.share * 100).toFixed(2) + "%";
  $("fin-text").textContent = v.text;
  const missing = cp.missing || [];
  $("fin-missing").textContent = missing.length
    ? "Not voted yet: " + missing.map(m => short(m.address) + " (" + (m.stake || 0).toLocaleString() + ")").join(", ") + (cp.missing_more ? " and " + cp.missing_more + " more" : "")
    : "Every staker voted.";
}

function renderGlance() {
  const s = st.status;
  if (!s) return;
  $("chain-id").textContent = s.chain_id;
  $("height").textContent = s.height.toLocaleString();
  $("head-age").textContent = "newest block " + ago(s.head_timestamp);
  $("head-rest").textContent = restNote(s, st.genesis, Date.now());
  $("head").textContent = short(s.head_hash);
  $("head").title = s.head_hash;
  const head = st.blocks[st.blocks.length - 1];
  $("head-forger").textContent = head && head.height === s.height ? "forged by " + short(head.forger) + (head.forger === st.me ? " (this node)" : "") : "";
  $("peer-count").textContent = s.peers;
  $("pending").textContent = s.pending.toLocaleString();
  $("me").textContent = st.me;
  $("version").textContent = "posd " + s.version + " · chain " + s.chain_id + " · " + s.election + " election";
  const mine = st.stakes.find(x => x.address === st.me);
  const recent = forgedWindow();
  const forged = recent.filter(b => b.forger === st.me).length;
  const f = $("forging");
  if (!mine) {
    f.textContent = "Not forging: no stake";
  } else {
    f.textContent = "Forging: " + pct(mine.share) + " of stake, " + forged + " of the last " + recent.length + " blocks";
  }
  if (s.byzantine) f.textContent = "BYZANTINE (" + s.byzantine + ", on purpose: lab network) · " + f.textContent;
  const tp = throughput(60);
  $("tps").textContent = tp.toFixed(tp < 10 ? 1 : 0);
}

function throughput(seconds) {
  const since = Date.now() - seconds * 1000;
  let n = 0;
  for (const b of st.blocks) if (b.timestamp >= since) n += b.tx_count;
  return n / seconds;
}

function renderStakers() {
  const recent = forgedWindow();
  $("window-n").textContent = recent.length;
  const count = new Map();
  for (const b of recent) count.set(b.forger, (count.get(b.forger) || 0) + 1);
  const off = offline();
  const rows = st.stakes.map(s => ({ address: s.address, stake: s.stake, share: s.share, forged: count.get(s.address) || 0 }));
  for (const [a, n] of count) if (!rows.find(r => r.address === a)) rows.push({ address: a, stake: 0, share: 0, forged: n });
  const box = $("stakers");
  box.replaceChildren();
  for (const r of rows) {
    const row = el("div", "staker" + (r.address === st.me ? " me" : ""));
    row.setAttribute("role", "listitem");
    row.dataset.address = r.address;
    const who = el("div", "who");
    const addr = el("span", "mono", short(r.address));
    addr.title = r.address;
    who.append(addr);
    if (r.address === st.me) who.append(el("span", "tag me", "this node"));
    if (off.has(r.address)) {
      const t = el("span", "tag off", "elected, offline");
      t.title = "the election picked it " + off.get(r.address) + " time(s) in the last " + recent.length + " blocks and it never forged: is its key running on a node?";
      who.append(t);
    }
    who.append(el("span", "tag", r.stake.toLocaleString() + " staked"));
    const bars = el("div", "bars");
    const fshare = recent.length ? r.forged / recent.length : 0;
    for (const [cls, share, label] of [["stake", r.share, "stake"], ["forged", fshare, "forged " + r.forged]]) {
      const bar = el("div", "bar " + cls);
      const track = el("div", "track");
      const fill = el("span", "fill");
      fill.style.width = (share * 100).toFixed(2) + "%";
      track.append(fill);
      const p = el("span", "pct", pct(share));
      p.title = label;
      bar.append(track, p);
      bars.append(bar);
    }
    row.append(who, bars);
    box.append(row);
  }
  if (!rows.length) box.append(el("p", "muted", "No stake yet: nobody can forge."));
}

function rankWhy(b) {
  if (b.rank === 0) return "";
  const who = (b.passed_over || []).map(short);
  if (who.length) {
    return "rank " + (b.rank - 1 ? "0–" + (b.rank - 1) : "0") + " (" + who.join(", ") + ") offline";
  }
  return "rank " + (b.rank > 1 ? "0–" + (b.rank - 1) : "0") + " did not forge in time";
}

function renderBlocks() {
  const tb = document.querySelector("#blocks tbody");
  tb.replaceChildren();
  const heartbeat = st.genesis && st.genesis.heartbeat;
  for (const b of st.blocks.slice(-SHOWN).reverse()) {
    const tr = el("tr", (b.forger === st.me ? "me" : "") + (b.fresh ? " fresh" : ""));
    tr.dataset.height = b.height;
    tr.append(el("td", "", b.height.toLocaleString()));
    const h = el("td", "mono wide", short(b.hash)); h.title = b.hash; tr.append(h);
    const f = el("td", "mono", b.height === 0 ? "genesis" : short(b.forger)); f.title = b.forger;
    if (b.forger === st.me) f.append(" ", el("span", "tag me", "this node"));
    tr.append(f);
    const r = el("td", "", String(b.rank));
    const why = rankWhy(b);
    if (why) r.append(el("span", "why", why));
    tr.append(r);
    const t = el("td", "", b.tx_count.toLocaleString());
    if (b.tx_count === 0) t.append(" ", el("span", "tag empty", heartbeat ? "heartbeat" : "empty"));
    tr.append(t);
    const fin = el("td", "");
    const mark = finalMark(b.height, st.status);
    if (mark) fin.append(el("span", "tag " + mark, mark === "final" ? "✓ final" : mark));
    tr.append(fin);
    const ts = el("td", "wide muted", new Date(b.timestamp).toLocaleTimeString());
    ts.title = ago(b.timestamp);
    tr.append(ts);
    tb.append(tr);
    b.fresh = false;
  }
}

function renderThroughput() {
  const svg = $("tput");
  const n = TPUT_MINUTES * 60 / TPUT_BUCKET_S;
  const now = Date.now(), start = now - n * TPUT_BUCKET_S * 1000;
  const buckets = new Array(n).fill(0);
  for (const b of st.blocks) {
    if (b.timestamp < start) continue;
    const i = Math.min(n - 1, Math.floor((b.timestamp - start) / (TPUT_BUCKET_S * 1000)));
    buckets[i] += b.tx_count;
  }
  const max = Math.max(1, ...buckets);
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  const base = document.createElementNS(ns, "line");
  base.setAttribute("x1", 0); base.setAttribute("x2", 600); base.setAttribute("y1", 119); base.setAttribute("y2", 119);
  svg.append(base);
  const w = 600 / n;
  buckets.forEach((v, i) => {
    const r = document.createElementNS(ns, "rect");
    const h = v ? Math.max(2, v / max * 112) : 0;
    r.setAttribute("x", (i * w + 1).toFixed(1)); r.setAttribute("width", (w - 2).toFixed(1));
    r.setAttribute("y", (119 - h).toFixed(1)); r.setAttribute("height", h.toFixed(1));
    const t = document.createElementNS(ns, "title");
    t.textContent = v + " transactions";
    r.append(t);
    svg.append(r);
  });
  $("tput-axis").textContent = "bars: transactions per " + TPUT_BUCKET_S + " s; tallest " + max.toLocaleString() + " (" + (max / TPUT_BUCKET_S).toFixed(1) + "/s)";
}

// rttText is a round-trip time in milliseconds as the peers list shows it;
// "rtt ?" until the node's first ping to the peer was answered.
function rttText(ms) {
  if (!(ms > 0)) return "rtt ?";
  return (ms < 1 ? ms.toFixed(2) : ms < 10 ? ms.toFixed(1) : Math.round(ms).toString()) + " ms";
}

// byRTT orders peers nearest first, the unmeasured last, then by id.
function byRTT(a, b) {
  const x = a.rtt_ms > 0 ? a.rtt_ms : Infinity, y = b.rtt_ms > 0 ? b.rtt_ms : Infinity;
  return x !== y ? (x < y ? -1 : 1) : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function renderPeers() {
  const ul = $("peers");
  ul.replaceChildren();
  for (const p of [...st.peers].sort(byRTT)) {
    const li = el("li", "", short(p.id));
    li.title = p.id + "\n" + (p.addrs || []).join("\n") +
      (p.rtt_ms > 0 ? "\nround trip: " + rttText(p.rtt_ms) + " on average, " + rttText(p.rtt_last_ms) + " at the last ping" : "");
    li.append(el("span", "rtt", " " + rttText(p.rtt_ms)));
    if (p.addrs && p.addrs.length) li.append(el("span", "muted", " " + p.addrs[0]));
    ul.append(li);
  }
  if (!st.peers.length) ul.append(el("li", "muted", "no peers: this node is alone"));
}

function renderEvidence() {
  const sec = $("evidence");
  if (!Array.isArray(st.evidence)) { sec.hidden = true; return; }
  sec.hidden = false;
  const tb = sec.querySelector("tbody");
  tb.replaceChildren();
  for (const e of st.evidence.slice(0, 20)) {
    const tr = el("tr");
    tr.append(el("td", "", String(e.height ?? "–")), el("td", "mono", short(e.forger || "")),
      el("td", "", e.included_in != null ? "block " + e.included_in : "pending"),
      el("td", "", e.slashed != null ? e.slashed.toLocaleString() + " stake" : "–"));
    tb.append(tr);
  }
  $("evidence-empty").hidden = st.evidence.length > 0;
}

function render() {
  renderGlance(); renderFinality(); renderStakers(); renderBlocks(); renderThroughput(); renderPeers(); renderEvidence();
}

function setConn(state, text) { const c = $("conn"); c.dataset.state = state; c.textContent = text; }

// refresh reads the small routes: status, stakes, peers. Called at most once
// a second whatever the block rate.
let refreshing = false, again = false;
async function refresh() {
  if (refreshing) { again = true; return; }
  refreshing = true;
  try {
    [st.status, st.stakes, st.peers, st.finality] = await Promise.all([get("/v1/status"), get("/v1/stakes"), get("/v1/peers"),
      // 501 on a node without finality: the panel stays hidden
      get("/v1/finality").catch(() => null)]);
    st.me = st.status.address;
    render();
  } catch (e) {
    setConn("down", "node not answering");
  } finally {
    setTimeout(() => { refreshing = false; if (again) { again = false; refresh(); } }, 1000);
  }
}

async function loadEvidence() {
  try { st.evidence = await get("/v1/evidence"); } catch (e) { st.evidence = null; }
  renderEvidence();
}

function follow() {
  const es = new EventSource("/v1/events?summary=1");
  es.onopen = () => setConn("live", "live");
  es.onerror = () => setConn("down", "reconnecting…");
  es.addEventListener("block", async ev => {
    const b = JSON.parse(ev.data);
    const last = st.blocks[st.blocks.length - 1];
    if (last && b.height > last.height + 1) {
      // missed some (the stream was down): fetch the gap as summaries
      try { addBlocks(await get("/v1/blocks/summaries?from=" + (last.height + 1) + "&limit=" + Math.min(500, b.height - last.height - 1))); } catch (e) {}
    }
    addBlocks([b]);
    if (st.status && b.height >= st.status.height) {
      st.status.height = b.height; st.status.head_hash = b.hash; st.status.head_timestamp = b.timestamp;
    }
    render();
    refresh();
  });
  // A checkpoint became justified or final: move the marks now, and let
  // refresh (at most once a second) bring the tallies.
  for (const kind of ["justified", "finalized"]) {
    es.addEventListener(kind, ev => {
      const c = JSON.parse(ev.data).checkpoint;
      if (st.status && c) {
        const key = kind === "justified" ? "justified_height" : "finalized_height";
        if (st.status[key] == null || c.height > st.status[key]) st.status[key] = c.height;
      }
      render();
      refresh();
    });
  }
}

async function start() {
  try {
    [st.genesis] = await Promise.all([get("/v1/genesis").catch(() => null)]);
    addBlocks(await get("/v1/blocks/summaries?limit=" + KEEP));
    for (const b of st.blocks) b.fresh = false;
  } catch (e) { setConn("down", "node not answering"); }
  await refresh();
  follow();
  loadEvidence();
  setInterval(refresh, 5000);         // the pool and peers change without blocks
  setInterval(loadEvidence, 30000);
  setInterval(() => { renderGlance(); renderThroughput(); }, 10000);
}

start();
