// Objects pages: the condition builder's remove buttons and the kanban board's drag and drop.
(function () {
  "use strict";

  // Remove a row of the condition builder.
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest ? evt.target.closest(".cond-remove") : null;
    if (!button) { return; }
    var row = button.closest(".cond-row");
    if (row) { row.remove(); }
  });

  // The board is one form (hx-trigger="end"): Sortable fires a bubbling "end" on the list a
  // card left, htmx posts the whole board, and the "order" inputs (a marker per column, an
  // "<id>@<stage shown>" per card) say where the card is now. The server answers the board
  // again, so a refused move snaps back. Sortable is attached again to every new board.
  function attach(root) {
    if (typeof Sortable === "undefined" || !root || !root.querySelectorAll) { return; }
    var board = root.id === "board-form" ? root : root.querySelector("#board-form");
    if (!board || board.getAttribute("data-can-move") !== "true") { return; }
    board.querySelectorAll(".cards").forEach(function (list) {
      if (Sortable.get(list)) { return; }
      Sortable.create(list, {
        group: "board",
        draggable: ".card",
        animation: 120,
        forceFallback: true,
        fallbackTolerance: 3,
        ghostClass: "sortable-ghost",
        chosenClass: "sortable-chosen",
        onStart: function () { board.classList.add("dragging"); },
        onEnd: function () { board.classList.remove("dragging"); }
      });
    });
  }

  if (window.htmx) {
    htmx.onLoad(attach);
  } else {
    document.addEventListener("DOMContentLoaded", function () { attach(document.body); });
  }
})();
