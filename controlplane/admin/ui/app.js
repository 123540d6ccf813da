// The admin API's status page. It polls the JSON API (see ui.go for why
// polling) and rebuilds the tables from it. Every piece of data goes into
// the DOM as text (textContent, append of strings, attribute values), never
// as markup: node ids, reasons and errors come from outside. The page's
// Content-Security-Policy enforces that with Trusted Types: assigning a
// string as markup throws.
"use strict";

const POLL_MS = 1000;
const TOKEN_KEY = "wasmfleet.admin-token";
const ACTIONS = ["promote", "pause", "resume", "rollback"];
const ACTOR = "web page";

let timer = null;
let inFlight = false;
let again = false;
let shown = "";

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

// call sends one API request, with the token when the page has one, and
// returns the decoded answer; a non-2xx answer throws its {"error"} text.
async function call(method, path, body) {
  const headers = {};
  const t = token();
  if (t) headers["Authorization"] = "Bearer " + t;
  const init = { method, headers, cache: "no-store" };
  if (method !== "GET") {
    headers["Wasmfleet-Actor"] = ACTOR;
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body || {});
  }
  const resp = await fetch("/api/v1" + path, init);
  let data = null;
  try {
    data = await resp.json();
  } catch (e) {
    data = null;
  }
  if (!resp.ok) {
    const err = new Error((data && data.error) || resp.status + " " + resp.statusText);
    err.status = resp.status;
    throw err;
  }
  return data;
}

// el makes an element of tag with class cls; children are nodes or strings,
// and strings become text nodes.
function el(tag, cls, ...children) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(typeof c === "string" ? c : c instanceof Node ? c : String(c));
  }
  return e;
}

function short(d) {
  return d ? d.slice(0, 12) : "";
}

function digest(d) {
  const s = el("span", "digest", short(d));
  if (d) s.title = d;
  return s;
}

function clear(e) {
  while (e.firstChild) e.removeChild(e.firstChild);
}

function say(id, text, bad) {
  const e = document.getElementById(id);
  e.textContent = text;
  e.classList.toggle("down", !!bad);
  e.classList.toggle("error", !!bad);
}

// poll fetches the status and every filter's history, renders them when
// they changed, and schedules the next poll once this one is done, so a slow
// server never has more than one poll of this page in flight.
async function poll() {
  clearTimeout(timer);
  timer = null;
  if (inFlight) {
    again = true;
    return;
  }
  inFlight = true;
  try {
    const st = await call("GET", "/status");
    const histories = {};
    await Promise.all(
      (st.filters || []).map(async (f) => {
        try {
          histories[f.name] = await call("GET", "/filters/" + encodeURIComponent(f.name) + "/history");
        } catch (e) {
          histories[f.name] = { error: e.message };
        }
      }),
    );
    const text = JSON.stringify([st, histories]);
    if (text !== shown) {
      shown = text;
      render(st, histories);
    }
    say("conn", "live: updated " + new Date().toLocaleTimeString(), false);
  } catch (e) {
    if (e.status === 401) {
      say("conn", "the admin API needs its token: enter it above", true);
    } else {
      say("conn", "admin API unreachable or failing: " + e.message, true);
    }
  } finally {
    inFlight = false;
    timer = setTimeout(poll, again ? 0 : POLL_MS);
    again = false;
  }
}

function render(st, histories) {
  renderReload(st.refused_reload);
  renderFilters(st.filters || []);
  renderMatrix(st.filters || [], st.nodes || []);
  renderHistory(st.filters || [], histories);
}

function renderReload(r) {
  const sec = document.getElementById("reload");
  sec.hidden = !r;
  document.getElementById("reload-path").textContent = r ? r.path : "";
  document.getElementById("reload-at").textContent = r ? r.at : "";
  document.getElementById("reload-reason").textContent = r ? r.reason : "";
}

function stepText(f) {
  if (!f.step || !f.steps) return "";
  return f.step + " of " + f.steps.length + " (" + f.steps.join(", ") + ")";
}

function stateText(f) {
  const s = [];
  if (f.retired) s.push("retired");
  if (f.paused) s.push("paused");
  else if (f.candidate) s.push("rolling out");
  if (f.next_step_at) s.push("next step " + f.next_step_at);
  if (f.required) s.push("required");
  return s.join(", ");
}

function renderFilters(filters) {
  const body = document.querySelector("#filters tbody");
  clear(body);
  for (const f of filters) {
    const tr = el("tr");
    tr.dataset.filter = f.name;
    const cell = (field, ...c) => {
      const td = el("td", null, ...c);
      td.dataset.field = field;
      tr.append(td);
      return td;
    };
    cell("name", f.name);
    cell("stable", digest(f.stable));
    cell("candidate", digest(f.candidate));
    cell("by", f.by);
    cell("percent", f.candidate ? f.percent + "%" : "");
    cell("step", stepText(f));
    cell("state", stateText(f)).className = f.paused ? "paused" : "";
    cell("error", f.last_error || "", f.last_error_at ? el("div", "muted", f.last_error_at) : null).classList.add("error");
    const bad = cell("bad");
    for (const b of f.bad || []) {
      bad.append(el("div", "bad", digest(b.digest), (b.node ? " on " + b.node : "") + ": " + b.reason));
    }
    const acts = cell("actions");
    for (const a of ACTIONS) {
      const btn = el("button", null, a);
      btn.type = "button";
      btn.dataset.action = a;
      btn.addEventListener("click", () => act(f.name, a, btn));
      acts.append(btn);
    }
    body.append(tr);
  }
}

// act runs a rollout command with the reason typed above the table, says
// how it went and polls at once so the tables show its effect.
async function act(filter, action, btn) {
  const reasonInput = document.getElementById("reason");
  const reason = reasonInput.value.trim();
  btn.disabled = true;
  try {
    await call("POST", "/rollout/" + encodeURIComponent(filter) + "/" + action, reason ? { reason } : {});
    say("action-result", action + " " + filter + ": done", false);
    reasonInput.value = "";
  } catch (e) {
    say("action-result", e.message, true);
  } finally {
    btn.disabled = false;
    poll();
  }
}

// running describes what a node accepted of a filter, each version named
// for its role in the rollout.
function running(r) {
  const parts = [];
  if (r.stable) parts.push("stable " + short(r.stable));
  if (r.candidate) parts.push("candidate " + short(r.candidate) + (r.candidate_percent ? " (" + r.candidate_percent + "% of requests)" : ""));
  return parts.join(" + ");
}

function renderMatrix(filters, nodes) {
  const names = filters.map((f) => f.name);
  for (const n of nodes) {
    for (const nf of n.filters || []) {
      if (!names.includes(nf.filter)) names.push(nf.filter);
    }
  }
  const head = document.querySelector("#matrix thead");
  clear(head);
  head.append(el("tr", null, el("th", null, "node"), el("th", null, "cluster"), el("th", null, "last seen"),
    ...names.map((n) => el("th", null, n)), el("th", null, "last NACK")));
  const body = document.querySelector("#matrix tbody");
  clear(body);
  for (const n of nodes) {
    const tr = el("tr");
    tr.dataset.node = n.id;
    const id = el("td", null, n.id);
    id.dataset.field = "id";
    tr.append(id, el("td", null, n.cluster || ""), el("td", null, n.last_seen || ""));
    for (const name of names) {
      const nf = (n.filters || []).find((x) => x.filter === name);
      const td = el("td");
      td.dataset.filter = name;
      if (!nf) {
        td.append(el("span", "muted", "—"));
      } else {
        const acked = running(nf.acked || {});
        td.append(el("div", "ack", acked ? "ACK " + acked : "no ACK yet"));
        if (nf.nacked && nf.nacked.length) {
          td.append(el("div", "nack", "NACK " + nf.nacked.map(short).join(", ") + ": " + (nf.reason || "")));
        }
      }
      tr.append(td);
    }
    const last = el("td", "nack");
    last.dataset.field = "last-nack";
    for (const t of n.types || []) {
      if (!t.last_nack) continue;
      const kind = t.type_url.slice(t.type_url.lastIndexOf(".") + 1);
      last.append(el("div", null, kind + " " + t.last_nack.version + " at " + t.last_nack.at + ": " + t.last_nack.reason));
    }
    tr.append(last);
    body.append(tr);
  }
}

function renderHistory(filters, histories) {
  const root = document.getElementById("history");
  clear(root);
  for (const f of filters) {
    const h = histories[f.name] || {};
    const sec = el("section");
    sec.dataset.filter = f.name;
    sec.append(el("h3", null, f.name));
    if (h.error) {
      sec.append(el("p", "error", h.error));
      root.append(sec);
      continue;
    }
    const versions = el("table", "versions",
      el("thead", null, el("tr", null, ...["version", "role", "size", "origin", "manifest", "added"].map((c) => el("th", null, c)))));
    const vb = el("tbody");
    for (const v of h.versions || []) {
      const role = v.digest === f.stable ? "stable" : v.digest === f.candidate ? "candidate" :
        (f.bad || []).some((b) => b.digest === v.digest) ? "rolled back" : "";
      const m = v.manifest ? v.manifest.name + " " + v.manifest.version : "";
      vb.append(el("tr", null, el("td", null, digest(v.digest)), el("td", null, role), el("td", null, String(v.size)),
        el("td", null, v.origin.kind + " " + v.origin.ref), el("td", null, m), el("td", null, v.added_at)));
    }
    versions.append(vb);
    const actions = el("table", "actions",
      el("thead", null, el("tr", null, ...["when", "action", "actor", "version", "reason"].map((c) => el("th", null, c)))));
    const ab = el("tbody");
    for (const a of h.actions || []) {
      ab.append(el("tr", null, el("td", null, a.at), el("td", null, a.action), el("td", null, a.actor),
        el("td", null, digest(a.digest)), el("td", null, a.reason || "")));
    }
    actions.append(ab);
    sec.append(el("h4", null, "versions"), versions, el("h4", null, "operator actions"), actions);
    root.append(sec);
  }
}

function init() {
  const input = document.getElementById("token");
  input.value = token();
  document.getElementById("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    poll();
  });
  document.getElementById("token-clear").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    input.value = "";
    poll();
  });
  poll();
}

init();
