// bildwerk web app: live progress, keyboard review, live decisions, compare, reproduce.
// Our own small script, no libraries. Pages work without it; this makes them quick.
"use strict";

const csrf = document.querySelector('meta[name="csrf"]')?.content || "";
const KINDS = ["run.started", "stage.started", "job.started", "job.cached", "job.failed",
  "job.finished", "stage.finished", "message", "run.finished"];

async function api(method, url, body) {
  const init = { method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const reply = await fetch(url, init);
  const data = reply.status === 204 ? {} : await reply.json().catch(() => ({}));
  if (!reply.ok) throw new Error(data.detail || `${reply.status} ${reply.statusText}`);
  return data;
}

function toast(text) {
  const el = document.querySelector("[data-toast]");
  if (!el) return;
  el.textContent = text;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.textContent = ""; }, 4000);
}

// ---------------------------------------------------------------- live progress

function followRun(bar) {
  const id = bar.dataset.follow;
  const source = new EventSource(`/api/v1/runs/${encodeURIComponent(id)}/events/stream`);
  let pending = null;
  const refresh = async (finished) => {
    const run = await api("GET", `/api/v1/runs/${encodeURIComponent(id)}`).catch(() => null);
    if (!run) return;
    const done = run.generated + run.cached + run.failed;
    bar.max = Math.max(run.planned, 1);
    bar.value = done;
    bar.textContent = `${done} of ${run.planned}`;
    document.querySelectorAll(`[data-status-of="${id}"]`).forEach((el) => {
      el.textContent = run.status;
      el.className = `status status-${run.status}`;
    });
    const text = document.querySelector("[data-progress-text]");
    if (text && document.body.dataset.page === "gallery") text.textContent = `${done} of ${run.planned}`;
    if (finished && document.body.dataset.page === "gallery") window.location.reload();
  };
  const later = () => { if (!pending) pending = setTimeout(() => { pending = null; refresh(false); }, 500); };
  for (const kind of KINDS) source.addEventListener(kind, later);
  source.addEventListener("run.finished", () => { source.close(); refresh(true); });
}

// ---------------------------------------------------------------- gallery

function gallery() {
  const root = document.getElementById("gallery");
  if (!root) return;
  const cards = [...root.querySelectorAll(".card")];
  const byId = new Map(cards.map((c) => [c.dataset.id, c]));
  const mayDecide = root.dataset.mayDecide === "yes";
  const bulk = document.querySelector(".bulk");
  const rejectDialog = document.getElementById("reject-dialog");
  const keysDialog = document.getElementById("keys-dialog");
  let index = -1;
  let rejecting = null;

  const current = () => cards[index];
  const move = (step) => {
    if (!cards.length) return;
    current()?.classList.remove("current");
    index = Math.min(cards.length - 1, Math.max(0, index + step));
    current().classList.add("current");
    current().focus({ preventScroll: true });
    current().scrollIntoView({ block: "nearest" });
  };
  const show = (card, state) => {
    card.className = card.className.replace(/\bstate-\S+/g, "").trim() + ` state-${state}`;
    card.querySelector("[data-state]").textContent = state;
  };
  const decide = async (card, state, reason) => {
    if (!mayDecide) { toast("You may not decide: ask for the reviewer role"); return false; }
    try {
      const d = await api("POST", `/api/v1/creatives/${card.dataset.id}/decisions`, { state, reason });
      show(card, d.state);
      toast(`${card.dataset.id.slice(0, 11)} ${d.state}`);
      return true;
    } catch (err) { toast(err.message); return false; }
  };
  const undo = async (card) => {
    try {
      const d = await api("POST", `/api/v1/creatives/${card.dataset.id}/undo`);
      show(card, d.state);
      toast(`${d.previous} undone: ${d.state} again`);
    } catch (err) { toast(err.message); }
  };
  const star = async (card) => {
    const button = card.querySelector("[data-star]");
    const on = button.getAttribute("aria-pressed") !== "true";
    try {
      await api(on ? "PUT" : "DELETE", `/api/v1/creatives/${card.dataset.id}/star`);
      button.setAttribute("aria-pressed", String(on));
    } catch (err) { toast(err.message); }
  };
  const selected = () => cards.filter((c) => c.querySelector("[data-select]").checked);
  const updateBulk = () => {
    const n = selected().length;
    cards.forEach((c) => c.classList.toggle("selected", c.querySelector("[data-select]").checked));
    bulk.hidden = n === 0;
    bulk.querySelector("[data-selected-count]").textContent = String(n);
  };
  const compareList = () => JSON.parse(sessionStorage.getItem("compare") || "[]");
  const openCompare = (ids) => {
    if (ids.length < 2) { toast("Add at least two creatives to compare (c)"); return; }
    window.location.href = "/compare?" + ids.slice(0, 4).map((i) => `id=${encodeURIComponent(i)}`).join("&");
  };
  const addCompare = (card) => {
    const ids = compareList().filter((i) => i !== card.dataset.id);
    ids.push(card.dataset.id);
    const kept = ids.slice(-4);
    sessionStorage.setItem("compare", JSON.stringify(kept));
    toast(`${kept.length} to compare (Shift+C opens)`);
  };
  const askReject = (card) => {
    rejecting = card;
    rejectDialog.querySelector("#reject-reason").value = "";
    rejectDialog.querySelector("[data-reject-error]").hidden = true;
    rejectDialog.showModal();
  };

  rejectDialog.querySelectorAll("[data-reason]").forEach((b) => b.addEventListener("click", () => {
    rejectDialog.querySelector("#reject-reason").value = b.dataset.reason;
  }));
  rejectDialog.querySelector("[data-close]").addEventListener("click", () => rejectDialog.close());
  rejectDialog.querySelector("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const reason = rejectDialog.querySelector("#reject-reason").value.trim();
    const error = rejectDialog.querySelector("[data-reject-error]");
    if (!reason) { error.textContent = "Say why (or pick a reason)."; error.hidden = false; return; }
    if (await decide(rejecting, "rejected", reason)) rejectDialog.close();
    current()?.focus({ preventScroll: true });
  });
  cards.forEach((card, i) => {
    card.addEventListener("click", () => { current()?.classList.remove("current"); index = i; card.classList.add("current"); });
    card.querySelector("[data-select]").addEventListener("change", updateBulk);
    card.querySelector("[data-star]").addEventListener("click", () => star(card));
  });
  bulk.querySelector('[data-bulk="approved"]').addEventListener("click", async () => {
    for (const card of selected()) await decide(card, "approved");
  });
  bulk.querySelector('[data-bulk="compare"]').addEventListener("click", () => openCompare(selected().map((c) => c.dataset.id)));

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, select, textarea, dialog[open]")) return;
    const card = current();
    const act = {
      j: () => move(1), k: () => move(-1), "?": () => keysDialog.showModal(),
      a: () => card && decide(card, "approved"), r: () => card && mayDecide && askReject(card),
      u: () => card && undo(card), s: () => card && star(card),
      x: () => { if (card) { const box = card.querySelector("[data-select]"); box.checked = !box.checked; updateBulk(); } },
      c: () => card && addCompare(card), C: () => openCompare(compareList()),
      Enter: () => card && (window.location.href = `/creatives/${card.dataset.id}`),
    }[event.key];
    if (act) { event.preventDefault(); act(); }
  });

  // other reviewers' decisions, live
  const live = new EventSource("/api/v1/decisions/stream");
  live.addEventListener("decision", (event) => {
    const d = JSON.parse(event.data);
    const card = byId.get(d.creative);
    if (card) show(card, d.state);
  });
}

// ---------------------------------------------------------------- compare

function compare() {
  const root = document.querySelector("[data-compare]");
  if (!root) return;
  const layers = [...root.querySelectorAll("[data-layer]")];
  const view = { scale: 1, x: 0, y: 0 };
  const apply = () => layers.forEach((l) => {
    l.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
  });
  const zoom = (factor, cx = 0, cy = 0) => {
    const next = Math.min(16, Math.max(1, view.scale * factor));
    view.x = cx - (cx - view.x) * (next / view.scale);
    view.y = cy - (cy - view.y) * (next / view.scale);
    view.scale = next;
    if (next === 1) { view.x = 0; view.y = 0; }
    apply();
  };
  root.querySelectorAll(".viewport").forEach((vp) => {
    vp.addEventListener("wheel", (event) => {
      event.preventDefault();
      const box = vp.getBoundingClientRect();
      zoom(event.deltaY < 0 ? 1.25 : 0.8, event.clientX - box.left, event.clientY - box.top);
    }, { passive: false });
    let drag = null;
    vp.addEventListener("pointerdown", (event) => { drag = { x: event.clientX - view.x, y: event.clientY - view.y }; vp.setPointerCapture(event.pointerId); });
    vp.addEventListener("pointermove", (event) => { if (drag) { view.x = event.clientX - drag.x; view.y = event.clientY - drag.y; apply(); } });
    vp.addEventListener("pointerup", () => { drag = null; });
  });
  document.querySelectorAll("[data-zoom]").forEach((b) => b.addEventListener("click", () => {
    if (b.dataset.zoom === "reset") { view.scale = 1; view.x = 0; view.y = 0; apply(); }
    else zoom(b.dataset.zoom === "in" ? 1.5 : 1 / 1.5);
  }));
  document.querySelector("[data-overlay]")?.addEventListener("change", (event) => {
    root.querySelectorAll(".overlay").forEach((svg) => { svg.hidden = !event.target.checked; });
  });
  const wipe = document.querySelector("[data-wipe]");
  const panes = root.querySelectorAll("[data-pane]");
  if (wipe && panes.length === 2) {
    const cut = () => { panes[1].style.clipPath = `inset(0 0 0 ${wipe.value}%)`; };
    wipe.addEventListener("input", cut);
    cut();
  }
}

// ---------------------------------------------------------------- reproduce

function reproduce() {
  const form = document.querySelector("[data-reproduce]");
  if (!form) return;
  const out = form.querySelector("[data-reproduce-result]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const id = form.action.split("/").slice(-2)[0];
    out.textContent = "reproducing…";
    try {
      const job = await api("POST", `/api/v1/creatives/${id}/reproduce`);
      const source = new EventSource(`/api/v1/runs/${job.events}/events/stream`);
      source.addEventListener("run.finished", (e) => {
        source.close();
        const d = JSON.parse(e.data);
        out.textContent = d.data.status !== "done" ? `failed: ${d.message}`
          : d.data.identical ? "identical" : "not identical";
      });
    } catch (err) { out.textContent = err.message; }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("progress[data-follow]").forEach(followRun);
  gallery();
  compare();
  reproduce();
});
