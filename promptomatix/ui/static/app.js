// Promptomatix UI: span selection for feedback, live run progress, the candidate chart.
// Data from the server is only ever inserted with textContent (never innerHTML).
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

// --- span feedback: the selection's offsets inside the prompt <pre> --------------------------------------------
function offsetIn(container, node, offset) {
  const r = document.createRange();
  r.setStart(container, 0);
  r.setEnd(node, offset);
  return r.toString().length; // UTF-16 units, converted to code points by the server
}

function readSelection(pre) {
  const sel = window.getSelection();
  if (!sel || sel.rangeCount === 0 || sel.isCollapsed) return null;
  const range = sel.getRangeAt(0);
  if (!pre.contains(range.startContainer) || !pre.contains(range.endContainer)) return null;
  const start = offsetIn(pre, range.startContainer, range.startOffset);
  const end = offsetIn(pre, range.endContainer, range.endOffset);
  if (end <= start) return null;
  return {start, end, text: pre.textContent.slice(start, end)};
}

function setupSpanForm() {
  const pre = document.getElementById("prompt");
  const form = document.getElementById("span-form");
  if (!pre || !form) return;
  const fields = ["start", "end", "text"].map((k) => document.getElementById("span-" + k));
  const quote = document.getElementById("span-quote");
  const save = document.getElementById("span-save");
  const pick = () => {
    const span = readSelection(pre);
    if (!span || !span.text.trim()) return;
    fields[0].value = String(span.start);
    fields[1].value = String(span.end);
    fields[2].value = span.text;
    fields.forEach((f) => { f.disabled = false; });
    quote.textContent = span.text;
    quote.classList.remove("muted");
    save.disabled = false;
    document.getElementById("span-comment").focus({preventScroll: true});
  };
  pre.addEventListener("mouseup", () => setTimeout(pick, 0));
  pre.addEventListener("keyup", pick);
}

// --- live run progress (polling) ------------------------------------------------------------------------------
const MAX_POLLS = 20000; // about 4 hours at the usual pace; a page left open does not poll forever

function renderJob(box, job) {
  const status = document.getElementById("job-status");
  status.textContent = job.status;
  status.className = "badge " + job.status;
  document.getElementById("job-message").textContent = job.message;
  document.getElementById("job-seconds").textContent = job.seconds + " s";
  document.getElementById("job-spent").textContent = job.spent || "";
  const list = document.getElementById("job-events");
  for (const e of job.events) {
    const li = document.createElement("li");
    const stage = document.createElement("span");
    stage.className = "stage";
    stage.textContent = e.stage;
    li.append(stage, " " + e.message);
    list.append(li);
  }
  box.dataset.next = String(job.next);
  document.getElementById("job-cancel").hidden = !job.live;
  if (!job.live && job.session_id) {
    const links = document.getElementById("job-links");
    links.textContent = "";
    const a = document.createElement("a");
    a.id = "job-session";
    const v = job.version ? "?v=" + encodeURIComponent(job.version) : "";
    a.href = "/s/" + encodeURIComponent(job.session_id) + v;
    a.textContent = job.version ? "open version " + job.version : "open the session";
    links.append(a);
  }
}

function setupJob() {
  const box = document.getElementById("job");
  if (!box) return;
  let polls = 0;
  let failures = 0;
  const poll = async () => {
    if (++polls > MAX_POLLS) return;
    try {
      const r = await fetch("/jobs/" + encodeURIComponent(box.dataset.job) + "/status?since=" + box.dataset.next,
                            {credentials: "same-origin"});
      if (!r.ok) throw new Error(String(r.status));
      const job = await r.json();
      failures = 0;
      renderJob(box, job);
      if (job.live) setTimeout(poll, 500);
    } catch (err) {
      if (++failures < 10) setTimeout(poll, 1000 * failures);
    }
  };
  if (box.dataset.live === "1") setTimeout(poll, 300);
  const cancel = document.getElementById("job-cancel");
  cancel.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = new FormData(cancel);
    await fetch(cancel.action, {method: "POST", body, headers: {"X-CSRF-Token": csrf()}, credentials: "same-origin"});
  });
}

// --- candidates: click a point or a row to see its prompt -----------------------------------------------------
function showCandidate(id) {
  document.querySelectorAll(".cand-detail").forEach((el) => { el.hidden = el.id !== "cand-" + id; });
  document.querySelectorAll("#chart circle").forEach((c) => c.classList.toggle("selected", c.dataset.cand === id));
  const hint = document.getElementById("cand-hint");
  if (hint) hint.hidden = true;
}

function setupCandidates() {
  document.querySelectorAll("#chart circle, .show-cand").forEach((el) => {
    el.addEventListener("click", () => showCandidate(el.dataset.cand));
    el.addEventListener("keydown", (ev) => { if (ev.key === "Enter") showCandidate(el.dataset.cand); });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setupSpanForm();
  setupJob();
  setupCandidates();
  document.documentElement.dataset.ready = "1"; // the handlers exist: tests (and scripts) wait for this mark
});
