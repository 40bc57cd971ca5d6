// The review page's one script. It keeps the admin token in sessionStorage (this tab only) and
// sends it as an Authorization header; nothing is ever put in a cookie, so another site cannot
// make the browser act. Everything shown from the node's data goes in through textContent, never
// as HTML, and control characters are shown as \uXXXX so stored text cannot hide or reorder
// what is around it.
(() => {
  "use strict";
  const KEY = "links.admin.token";
  const $ = (id) => document.getElementById(id);

  const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2069\ufeff]/g;
  const show = (v) =>
    String(v === null || v === undefined ? "" : v).replace(CONTROL, (ch) => "\\u" + ch.charCodeAt(0).toString(16).padStart(4, "0"));

  function el(tag, opts, ...children) {
    const node = document.createElement(tag);
    if (opts) {
      for (const [k, v] of Object.entries(opts)) {
        if (k === "text") node.textContent = show(v);
        else if (k === "className") node.className = v;
        else if (k.startsWith("data-") || k === "title" || k === "type" || k === "role" || k === "name" || k === "placeholder" || k === "aria-label" || k === "maxlength") node.setAttribute(k, show(v));
        else throw new Error("el: unknown option " + k);
      }
    }
    for (const c of children) if (c) node.append(c);
    return node;
  }

  const token = () => sessionStorage.getItem(KEY);

  function status(text) {
    $("status").textContent = show(text);
  }

  /** `#token=...` in the address: kept for this tab, then removed from the address bar and history. */
  function takeTokenFromAddress() {
    const hash = location.hash.slice(1);
    if (!hash) return;
    const t = new URLSearchParams(hash).get("token");
    if (t === null) return;
    if (t !== "") sessionStorage.setItem(KEY, t);
    history.replaceState(null, "", location.pathname + location.search);
  }

  class ApiError extends Error {
    constructor(status, code, detail) {
      super(detail);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body) {
    const headers = { Authorization: "Bearer " + token(), Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
      redirect: "error",
    });
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    if (!res.ok) {
      const detail = data && typeof data.detail === "string" ? data.detail : "HTTP " + res.status;
      const code = data && typeof data.code === "string" ? data.code : String(res.status);
      if (res.status === 401) signOut("Signed out: " + detail + " [" + code + "]");
      throw new ApiError(res.status, code, detail);
    }
    return data;
  }

  const vpath = (vid, rest) => "/villages/" + encodeURIComponent(vid) + rest;

  function age(iso) {
    const t = Date.parse(iso);
    if (Number.isNaN(t)) return "";
    const s = Math.max(0, Math.round((Date.now() - t) / 1000));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " d ago";
  }

  function field(dl, name, value, mono) {
    dl.append(el("dt", { text: name }), el("dd", { text: value, className: mono ? "mono" : "" }));
  }

  function entryCard(vid, e, onDecided) {
    const dl = el("dl");
    field(dl, "Reason", e.detail ? e.reason + ": " + e.detail : e.reason);
    field(dl, "Issuer", e.issuer === null ? "(unreadable)" : e.issuer);
    field(dl, "Key", e.issuer_key_hash || "(none)", true);
    field(dl, "Received", e.received_at ? e.received_at + " (" + age(e.received_at) + ")" : "(unknown)");
    field(dl, "Pushed by", e.actor || "(unknown)");
    const claims = el("ul", { className: "claims" });
    for (const c of e.claims_preview) {
      claims.append(el("li", { text: c.subject + " \u2014" + c.predicate + "\u2192 " + (c.object === null ? "(none)" : c.object) }));
    }
    if (e.claims_count > e.claims_preview.length) {
      claims.append(el("li", { className: "muted", text: "and " + (e.claims_count - e.claims_preview.length) + " more" }));
    }
    const refusal = el("p", { className: "refusal", role: "alert" });
    const approve = el("button", { type: "button", className: "approve", text: "Approve" });
    const reason = el("input", { type: "text", name: "reason", placeholder: "Reason for rejecting", "aria-label": "Reason for rejecting", maxlength: "2000" });
    reason.required = true;
    const reject = el("button", { type: "submit", className: "reject", text: "Reject" });
    const rejectForm = el("form", { className: "reject-form" }, reason, reject);
    const card = el(
      "article",
      { className: "entry", "data-bundle-id": e.bundle_id },
      el("h4", { className: "mono", text: e.bundle_id }),
      dl,
      el("div", { className: "muted", text: e.claims_count + " claim(s)" }),
      claims,
      el("div", { className: "actions" }, approve, rejectForm),
      refusal,
    );
    const busy = (on) => {
      approve.disabled = on;
      reject.disabled = on;
    };
    approve.addEventListener("click", async () => {
      busy(true);
      refusal.textContent = "";
      try {
        await api("POST", vpath(vid, "/quarantine/" + e.bundle_id + "/approve"));
        card.remove();
        status("Approved " + e.bundle_id);
        onDecided();
      } catch (err) {
        refusal.textContent = show("Refused: " + err.message + " [" + err.code + "]");
        busy(false);
      }
    });
    rejectForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const text = reason.value.trim();
      if (text === "") {
        refusal.textContent = "Give a reason for rejecting.";
        return;
      }
      busy(true);
      refusal.textContent = "";
      try {
        await api("POST", vpath(vid, "/quarantine/" + e.bundle_id + "/reject"), { reason: text });
        card.remove();
        status("Rejected " + e.bundle_id);
        onDecided();
      } catch (err) {
        refusal.textContent = show("Refused: " + err.message + " [" + err.code + "]");
        busy(false);
      }
    });
    return card;
  }

  function policyView(latest) {
    const p = latest.artifact && typeof latest.artifact.policy === "object" ? latest.artifact.policy : {};
    const dl = el("dl");
    field(dl, "Policy hash", latest.policy_hash, true);
    field(dl, "Signed", latest.signed ? "yes" : "no");
    field(dl, "Visibility", p.visibility);
    field(dl, "Predicates", Array.isArray(p.allowed_predicates) ? p.allowed_predicates.join(", ") : "");
    field(dl, "Issuer keys allowed", Array.isArray(p.issuer_allowlist) ? String(p.issuer_allowlist.length) : "0");
    field(dl, "Issuer keys blocked", Array.isArray(p.issuer_blocklist) ? String(p.issuer_blocklist.length) : "0");
    field(dl, "Max window (days)", p.max_window_days);
    const pre = el("pre", { text: JSON.stringify(p, null, 2) });
    return el("div", { className: "policy" }, dl, el("details", null, el("summary", { text: "Whole policy" }), pre));
  }

  function auditTable(rows) {
    if (rows.length === 0) return el("p", { className: "muted", text: "No recent audit rows for this village." });
    const body = el("tbody");
    for (const r of rows.slice().reverse()) {
      body.append(
        el(
          "tr",
          null,
          el("td", { text: r.ts }),
          el("td", { text: r.action }),
          el("td", { className: "mono", text: r.bundle_id || "" }),
          el("td", { text: r.actor || "" }),
          el("td", { text: r.reason || "" }),
        ),
      );
    }
    const head = el("tr", null, ...["Time", "Action", "Bundle", "Actor", "Reason"].map((h) => el("th", { text: h })));
    return el("div", { className: "scroll" }, el("table", { className: "audit" }, el("thead", null, head), body));
  }

  async function fill(box, load, render) {
    box.replaceChildren(el("p", { className: "muted", text: "Loading\u2026" }));
    try {
      box.replaceChildren(render(await load()));
    } catch (err) {
      box.replaceChildren(el("p", { className: "refusal", text: "Could not load: " + err.message + " [" + err.code + "]" }));
    }
  }

  function villageSection(v) {
    const vid = v.village_id;
    const policyBox = el("div");
    const queueBox = el("div", { className: "queue" });
    const auditBox = el("div");
    const count = el("span", { className: "count" });
    // the village's audit tree holds only its rows, each a stored JSON object
    const refreshAudit = () =>
      fill(auditBox, () => api("GET", vpath(vid, "/audit/entries?last=20")), (a) => auditTable(a.entries.map((line) => JSON.parse(line))));
    // the queue comes in pages (the node reads each held bundle it shows); `held` counts them all
    let held = 0;
    const showPage = (q, into) => {
      for (const e of q.entries) into.append(entryCard(vid, e, decided));
      if (!q.next_cursor) return;
      const more = el("button", { type: "button", className: "more", text: "Show more" });
      more.addEventListener("click", async () => {
        more.disabled = true;
        try {
          const next = await api("GET", vpath(vid, "/quarantine?cursor=" + encodeURIComponent(q.next_cursor)));
          more.remove();
          showPage(next, queueBox);
        } catch (err) {
          more.disabled = false;
          status("Could not load more: " + err.message + " [" + err.code + "]");
        }
      });
      into.append(more);
    };
    const loadQueue = () =>
      fill(
        queueBox,
        () => api("GET", vpath(vid, "/quarantine")),
        (q) => {
          held = q.total;
          count.textContent = String(held);
          if (q.entries.length === 0) return el("p", { className: "muted", text: "Nothing held." });
          const list = document.createDocumentFragment();
          showPage(q, list);
          return list;
        },
      );
    const decided = () => {
      held = Math.max(0, held - 1);
      count.textContent = String(held);
      if (queueBox.querySelectorAll("article.entry").length === 0) {
        if (held === 0) queueBox.replaceChildren(el("p", { className: "muted", text: "Nothing held." }));
        else loadQueue(); // the rest were on later pages
      }
      refreshAudit();
    };
    fill(policyBox, () => api("GET", vpath(vid, "/policy/latest")), policyView);
    loadQueue();
    refreshAudit();
    return el(
      "section",
      { className: "village", "data-village-id": vid },
      el("h2", { text: v.name + " (" + vid + ")" }),
      el("p", { className: "muted", text: "Signed in as " + v.member_id + " (" + v.role + ")" }),
      el("h3", { text: "Policy in force" }),
      policyBox,
      el("h3", null, document.createTextNode("Quarantine: "), count),
      queueBox,
      el("h3", { text: "Recent audit rows" }),
      auditBox,
    );
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    $("villages").replaceChildren();
    $("sign-in").hidden = false;
    $("sign-out").hidden = true;
    status(message || "");
  }

  async function load() {
    $("sign-in").hidden = true;
    $("sign-out").hidden = false;
    status("Loading\u2026");
    let me;
    try {
      me = await api("GET", "/me/villages");
    } catch (err) {
      if (err.status !== 401) status("Could not list your villages: " + err.message + " [" + err.code + "]");
      return;
    }
    const managed = me.villages.filter((v) => v.rights.includes("manage"));
    status(managed.length === 0 ? "This token manages no village on this node." : "");
    $("villages").replaceChildren(...managed.map(villageSection));
  }

  $("sign-in-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $("token");
    const t = input.value.trim();
    input.value = "";
    if (t === "") return;
    sessionStorage.setItem(KEY, t);
    load();
  });
  $("sign-out").addEventListener("click", () => signOut("Signed out."));

  takeTokenFromAddress();
  if (token()) load();
  else signOut("");
})();
