// models page: promote (refused for a model without a passed gate, then offered with --force as the CLI allows)
// and roll back, both through dt.post; the page reloads to show the registry as it is now
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const message = document.getElementById("models-message");
  function show(text) {
    if (message) message.textContent = text;
    dt.flash(text, "error");
  }
  async function promote(id, force, button) {
    if (button) button.disabled = true;
    try {
      await dt.post(`/api/models/${encodeURIComponent(id)}/promote`, {force});
      location.reload();
    } catch (err) {
      show(err.message);
      if (button) button.disabled = false;
      // the CLI allows --force over a missing or failed gate: offer it, once, beside the model
      const holder = document.querySelector(`.model-actions[data-id="${CSS.escape(id)}"]`);
      if (!force && holder && !holder.querySelector(".force") && /--force/.test(err.message)) {
        holder.append(" ", dt.el("button", {type: "button", class: "danger force", "data-id": id, onclick: (ev) => {
          if (confirm(`Promote ${id} without a passed evaluation gate (--force)?`)) promote(id, true, ev.target);
        }}, "Promote anyway (--force)"));
      }
    }
  }
  for (const button of document.querySelectorAll("button.promote")) {
    button.addEventListener("click", () => promote(button.dataset.id, false, button));
  }
  const rollback = document.getElementById("rollback");
  if (rollback) {
    rollback.addEventListener("click", async () => {
      rollback.disabled = true;
      try {
        await dt.post("/api/models/rollback", {});
        location.reload();
      } catch (err) {
        show(err.message);
        rollback.disabled = false;
      }
    });
  }
});
