/* cardsvc pages: small vanilla JS, no build step.
 * - fetch with the CSRF header (cardsvc.post);
 * - submit buttons disabled after the first click (the server's form nonce is the real guard);
 * - drafts: typed form fields are kept in sessionStorage while a session-expiry sign-in happens,
 *   and put back (with a notice) when the user returns to the form;
 * - polling: an element with data-poll="URL" is refreshed from that JSON endpoint.
 */
"use strict";
(function () {
  const csrf = () => document.body.dataset.csrf || "";
  const DRAFT = "cardsvc.draft:", RELOGIN = "cardsvc.relogin";

  function post(url, body) {
    return fetch(url, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()}, body: JSON.stringify(body || {})});
  }

  function fields(form) {
    const out = {};
    for (const el of form.elements) {
      if (el.name && !["csrf", "nonce", "password"].includes(el.name) && el.type !== "file" && el.type !== "hidden") {
        out[el.name] = (el.type === "checkbox" || el.type === "radio") ? el.checked : el.value;
      }
    }
    return out;
  }

  function keepDrafts(form) {
    const key = DRAFT + location.pathname + "#" + (form.id || form.getAttribute("action"));
    form.addEventListener("submit", () => sessionStorage.setItem(key, JSON.stringify(fields(form))));
    return key;
  }

  function restoreDrafts(form, key) {
    const saved = sessionStorage.getItem(key);
    sessionStorage.removeItem(key);
    if (!saved || !sessionStorage.getItem(RELOGIN)) return false;
    const values = JSON.parse(saved);
    for (const el of form.elements) {
      if (el.name in values) {
        if (el.type === "checkbox" || el.type === "radio") el.checked = values[el.name]; else el.value = values[el.name];
      }
    }
    return true;
  }

  function forms() {
    let restored = false;
    for (const form of document.querySelectorAll("form[method=post]")) {
      form.addEventListener("submit", () => {
        for (const b of form.querySelectorAll("button[type=submit]")) setTimeout(() => { b.disabled = true; }, 0);
      });
      if (form.hasAttribute("data-draft")) restored = restoreDrafts(form, keepDrafts(form)) || restored;
    }
    const why = document.querySelector("[data-why]");
    if (why && why.dataset.why === "login.expired") sessionStorage.setItem(RELOGIN, "1");
    else if (document.body.dataset.csrf) sessionStorage.removeItem(RELOGIN);
    if (restored) document.getElementById("drafts-restored").hidden = false;
  }

  function fill(el, data) {
    const keys = new Set((data.rows || []).map((row) => String(row.key)));
    for (const tr of el.querySelectorAll("tbody tr[data-key]")) if (!keys.has(tr.dataset.key)) tr.remove();
    for (const row of data.rows || []) {
      const key = String(row.key);
      let tr = el.querySelector(`tr[data-key="${CSS.escape(key)}"]`);
      if (!tr) {
        tr = document.createElement("tr");
        tr.dataset.key = key;
        for (const col of data.columns) {
          const td = document.createElement("td");
          td.dataset.col = col;
          if (col !== data.columns[0]) td.className = "num";
          tr.appendChild(td);
        }
        el.querySelector("tbody").appendChild(tr);
      }
      for (const col of data.columns) tr.querySelector(`td[data-col="${col}"]`).textContent = row[col] ?? "";
    }
    const stamp = el.querySelector("[data-updated]");
    if (stamp) stamp.textContent = data.updated || "";
  }

  function poll(el) {
    const every = Number(el.dataset.every || 2000);
    const tick = () => fetch(el.dataset.poll, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then((data) => fill(el, data))
      .catch(() => { el.dataset.pollError = "1"; })
      .finally(() => setTimeout(tick, every));
    tick();
  }

  window.cardsvc = {post};
  // A page restored by the back button comes back with its buttons disabled: enable them again.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) for (const b of document.querySelectorAll("button[type=submit]")) b.disabled = false;
  });
  document.addEventListener("DOMContentLoaded", () => {
    forms();
    for (const el of document.querySelectorAll("[data-poll]")) poll(el);
  });
})();
