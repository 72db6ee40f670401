// The task board: SortableJS on every column, inside one htmx form (hx-trigger="end").
// A drop fires Sortable's bubbling "end" event; htmx posts the whole board (column markers
// and cards in their new order) and swaps the board the server draws back: a refused move
// comes back in its old column, with the reason in #flash.
(function () {
  "use strict";

  function attach(root) {
    var lists = root.querySelectorAll ? root.querySelectorAll("#board .cards") : [];
    if (root.id === "board") { lists = root.querySelectorAll(".cards"); }
    lists.forEach(function (list) {
      if (list._sortable) { return; }
      list._sortable = new Sortable(list, {
        group: "tasks",
        animation: 150,
        draggable: ".card.movable",
        ghostClass: "sortable-ghost"
      });
    });
  }

  // Before the board is posted (Sortable's "end" event carries the card and both lists): a
  // move that needs a comment asks for one; a move within a column, or one given up, is not
  // posted (a given-up move draws the board again).
  document.addEventListener("htmx:confirm", function (evt) {
    var form = evt.detail.elt;
    var drop = evt.detail.triggeringEvent;
    if (!form || form.id !== "board" || !drop || !drop.item) { return; }
    var from = drop.from.getAttribute("data-status");
    var to = drop.to.getAttribute("data-status");
    var comment = form.querySelector("input[name=comment]");
    comment.value = "";
    if (from === to) { evt.preventDefault(); return; }
    var moves = {};
    try { moves = JSON.parse(drop.item.getAttribute("data-moves") || "{}"); } catch (e) { moves = {}; }
    if (moves[to] === true) {
      evt.preventDefault();
      var text = window.prompt(form.getAttribute("data-comment-prompt") || "Comment", "");
      if (text === null || !text.trim()) {
        redraw();
        return;
      }
      comment.value = text;
      evt.detail.issueRequest(true);
    }
  });

  function redraw() {
    var url = "/tasks/board" + window.location.search;
    htmx.ajax("GET", url, { target: "#board", select: "#board", swap: "outerHTML" });
  }

  htmx.onLoad(function (elt) { attach(elt); });
})();
