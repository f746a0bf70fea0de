// Browse: a click anywhere on a row of the items table opens the item.
"use strict";
document.addEventListener("click", (event) => {
  const row = event.target.closest("tr.row-link");
  if (!row || event.target.closest("a")) return;
  window.location.href = row.getAttribute("data-href");
});
