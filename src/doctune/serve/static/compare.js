// compare page: draw the dataset map of the items the current filters show (a POST: it writes a file)
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("show-map");
  if (!button) return;
  const params = JSON.parse(document.getElementById("map-params").textContent);
  button.addEventListener("click", async () => {
    const box = document.getElementById("map-box");
    const note = document.getElementById("map-note");
    button.disabled = true;
    note.textContent = "drawing the map...";
    box.classList.remove("hidden");
    try {
      const reply = await dt.post("/api/compare/map", params);
      note.textContent = `${reply.points} items on the map` +
        (reply.missing ? ` (${reply.missing} without an embedding left out)` : "") +
        " · red: regression, green: improvement, grey: same";
      const frame = document.getElementById("map-frame");
      frame.setAttribute("src", reply.url);
      frame.dataset.url = reply.url;
    } catch (err) {
      note.textContent = err.message;
      note.className = "bad";
      dt.flash(err.message, "error");
    } finally {
      button.disabled = false;
    }
  });
});
