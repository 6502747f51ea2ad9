// Polls /api/runs/{id}/progress and updates the progress page in place.
// Without JavaScript the page keeps its plain reload link.
(function () {
  "use strict";
  var section = document.getElementById("progress");
  if (!section) { return; }
  var runId = section.getAttribute("data-run-id");
  var url = "/api/runs/" + encodeURIComponent(runId) + "/progress";
  var intervalMs = 1000;

  function seconds(value) {
    if (typeof value !== "number") { return ""; }
    if (value < 10) { return value.toFixed(1) + " s"; }
    if (value < 60) { return Math.round(value) + " s"; }
    var total = Math.round(value);
    return Math.floor(total / 60) + " min " + (total % 60) + " s";
  }

  function badge(status) {
    var span = document.createElement("span");
    span.className = "badge status-" + status;
    span.textContent = status.replace(/_/g, " ");
    return span;
  }

  function cell(tag, child, className) {
    var element = document.createElement(tag);
    if (className) { element.className = className; }
    if (typeof child === "string") { element.textContent = child; } else { element.appendChild(child); }
    return element;
  }

  function render(data) {
    var status = document.getElementById("run-status");
    status.className = "badge status-" + data.status;
    status.textContent = data.status.replace(/_/g, " ");
    var body = document.querySelector("#stages tbody");
    if (data.stages.length) {
      body.textContent = "";
      data.stages.forEach(function (stage) {
        var row = document.createElement("tr");
        row.setAttribute("data-stage", stage.name);
        var name = cell("th", stage.name);
        name.setAttribute("scope", "row");
        row.appendChild(name);
        row.appendChild(cell("td", badge(stage.status)));
        row.appendChild(cell("td", seconds(stage.duration_s), "n"));
        row.appendChild(cell("td", stage.summary || ""));
        body.appendChild(row);
      });
    }
    var error = document.getElementById("job-error");
    if (data.job && data.job.error && (data.status === "failed" || data.status === "interrupted")) {
      error.querySelector("pre").textContent = data.job.error;
      error.hidden = false;
    }
    if (data.status === "awaiting_approval" && !document.getElementById("review-link")) {
      var links = document.getElementById("progress-links");
      links.appendChild(document.createTextNode(" · "));
      var review = document.createElement("a");
      review.id = "review-link";
      review.href = "/runs/" + encodeURIComponent(runId) + "/review";
      review.textContent = "Review queue";
      links.appendChild(review);
    }
    section.setAttribute("data-done", data.done ? "true" : "false");
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        render(data);
        if (!data.done) { window.setTimeout(poll, intervalMs); }
      })
      .catch(function () { window.setTimeout(poll, intervalMs * 5); });
  }

  if (section.getAttribute("data-done") !== "true") { window.setTimeout(poll, intervalMs); }
}());
