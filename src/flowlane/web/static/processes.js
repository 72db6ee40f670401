// The process Statistics tab: draws the tasks bar chart (Chart.js) from the JSON the page
// renders into #stats-data, and draws it again when htmx reloads the statistics.
(function () {
  "use strict";

  var chart = null;

  function draw() {
    var source = document.getElementById("stats-data");
    var canvas = document.getElementById("stats-chart");
    if (!source || !canvas || typeof window.Chart === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    if (chart) { chart.destroy(); chart = null; }
    chart = new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [{ label: data.label, data: data.counts, backgroundColor: "#1d4ed8" }]
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }
      }
    });
    canvas.dataset.drawn = String(data.counts.reduce(function (a, b) { return a + b; }, 0));
  }

  document.addEventListener("DOMContentLoaded", draw);
  // After any swap: draw again when the canvas is a new one (the statistics were reloaded).
  document.addEventListener("htmx:afterSettle", function () {
    var canvas = document.getElementById("stats-chart");
    if (canvas && (!chart || chart.canvas !== canvas)) { draw(); }
  });
  // A successful reassignment clears the form's choice of target.
  document.addEventListener("htmx:afterRequest", function (evt) {
    var form = evt.detail.elt;
    if (form && form.id === "reassign-form" && evt.detail.successful) {
      var to = form.querySelector("#r-to");
      if (to) { to.value = ""; }
    }
  });
})();
