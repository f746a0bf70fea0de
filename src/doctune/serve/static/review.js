// Review: decide on the current item with buttons or keys (a approve, r reject, e edit, j/k next/previous, s skip).
// Data goes into the page only through dt.el / textContent.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const KEY = "doctune-reviewer";
  const reviewerInput = document.getElementById("reviewer");
  if (reviewerInput) {
    reviewerInput.value = localStorage.getItem(KEY) || reviewerInput.dataset.default || "reviewer";
    reviewerInput.addEventListener("change", () => localStorage.setItem(KEY, reviewerInput.value.trim()));
  }
  const box = document.getElementById("review-item");
  if (!box) return;
  const itemId = box.dataset.item;
  const rejectBox = document.getElementById("reject-box");
  const reasonInput = document.getElementById("reject-reason");
  const editBox = document.getElementById("edit-box");
  const result = document.getElementById("result");
  let busy = false;

  const go = (url) => { if (url) window.location.href = url; };
  const next = () => go(box.dataset.next || box.dataset.reset);
  const show = (node, on) => node.classList.toggle("hidden", !on);

  async function decide(decision, extra) {
    if (busy) return null;
    busy = true;
    try {
      const reviewer = reviewerInput ? reviewerInput.value.trim() : "";
      if (reviewerInput && reviewer) localStorage.setItem(KEY, reviewer);
      const review = await dt.post("/api/reviews", Object.assign({item_id: itemId, decision, reviewer}, extra || {}));
      dt.flash(`${decision}: recorded`, "info");
      return review;
    } catch (err) {
      dt.flash(err.message, "error");
      return null;
    } finally {
      busy = false;
    }
  }

  async function approve() { if (await decide("approve")) next(); }

  function startReject() {
    show(editBox, false);
    show(rejectBox, true);
    reasonInput.focus();
  }
  async function confirmReject() {
    if (await decide("reject", {reason: reasonInput.value})) next();
  }

  function startEdit() {
    show(rejectBox, false);
    show(editBox, true);
    const first = editBox.querySelector("textarea");
    if (first) first.focus();
  }
  async function saveEdit() {
    const edits = {};
    for (const area of editBox.querySelectorAll("textarea")) {
      if (area.value === area.defaultValue) continue;
      if (area.dataset.json) {
        try { edits[area.name] = JSON.parse(area.value); } catch (e) { dt.flash(`${area.name}: not valid JSON`, "error"); return; }
      } else {
        edits[area.name] = area.value;
      }
    }
    const review = await decide("edit", {edits});
    if (!review) return;
    show(editBox, false);
    const v = review.recheck_verdict || {};
    const label = "grounded" in v ? (v.grounded ? "grounded" : "ungrounded: " + (v.reasons || []).join(", "))
                                  : (v.passes ? "passes" : "fails: " + (v.failed || []).join(", "));
    result.replaceChildren(
      "Edit saved. Re-check of the edit: ",
      dt.el("span", {class: "badge " + (review.recheck_accepts ? "good" : "bad"), id: "recheck"}, label),
      v.detail ? dt.el("span", {class: "muted"}, " " + v.detail) : "",
      review.override ? dt.el("span", {class: "badge bad override", id: "override"}, "override of the verifier") : "",
      " ", dt.el("a", {href: box.dataset.next || box.dataset.reset}, "next item (j)"));
    show(result, true);
  }

  function cancel() { show(rejectBox, false); show(editBox, false); }

  document.getElementById("approve").addEventListener("click", approve);
  document.getElementById("reject").addEventListener("click", startReject);
  document.getElementById("edit").addEventListener("click", startEdit);
  document.getElementById("save-edit").addEventListener("click", saveEdit);
  document.getElementById("prev").addEventListener("click", () => go(box.dataset.prev));
  document.getElementById("next").addEventListener("click", () => go(box.dataset.next));
  document.getElementById("skip").addEventListener("click", next);

  reasonInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); confirmReject(); }
    else if (event.key === "Escape") { cancel(); }
  });
  editBox.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); saveEdit(); }
    else if (event.key === "Escape") { cancel(); }
  });
  document.addEventListener("keydown", (event) => {
    const tag = (event.target.tagName || "").toLowerCase();
    if (["input", "textarea", "select"].includes(tag) || event.ctrlKey || event.metaKey || event.altKey) return;
    const actions = {a: approve, r: startReject, e: startEdit, j: () => go(box.dataset.next), k: () => go(box.dataset.prev), s: next};
    const action = actions[event.key];
    if (action) { event.preventDefault(); action(); }
  });
});
