/* elluminate web viewer: progressive enhancement only (every page works without it).
 * - live progress of a running experiment, from the server's Server-Sent Events
 * - filter forms submit when a choice changes
 * No inline scripts: the page's Content-Security-Policy allows scripts from this server only. */
"use strict";

(function () {
  var TERMINAL = ["SUCCESS", "FAILURE", "REVOKED", "REJECTED", "TIMEOUT"];

  function setText(id, value) {
    var element = document.getElementById(id);
    if (element && value !== undefined && value !== null) {
      element.textContent = String(value);
    }
  }

  function watch(section) {
    var url = section.getAttribute("data-stream");
    if (!url || !window.EventSource) {
      return;
    }
    var log = document.getElementById("log");
    var progress = document.getElementById("progress");
    var badge = document.getElementById("status");
    var first = true;
    var failures = 0;
    var source = new EventSource(url);

    source.onmessage = function (event) {
      var state;
      try {
        state = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      failures = 0;
      if (first && log) {
        log.textContent = ""; /* the first event carries the whole log */
      }
      first = false;
      if (state.status && badge) {
        badge.textContent = state.status;
        badge.className = "badge status " + state.status.toLowerCase();
      }
      setText("live-responses", state.completed_responses);
      setText("live-ratings", state.completed_ratings);
      setText("live-total", state.total_responses);
      if (progress && typeof state.completed_responses === "number") {
        progress.max = Math.max(1, state.total_responses || 0);
        progress.value = state.completed_responses;
      }
      if (state.logs_delta && log) {
        log.textContent += state.logs_delta;
        log.scrollTop = log.scrollHeight;
      }
      if (TERMINAL.indexOf(state.status) >= 0) {
        source.close();
        section.classList.add("done");
        section.setAttribute("data-finished", state.status);
        /* load the final results once the run has ended */
        window.setTimeout(function () { window.location.reload(); }, 800);
      }
    };
    source.onerror = function () {
      failures += 1;
      if (failures >= 5) {
        source.close();
        window.setTimeout(function () { window.location.reload(); }, 2000);
      }
    };
  }

  function autosubmit(form) {
    var selects = form.querySelectorAll("select, input[type=checkbox]");
    Array.prototype.forEach.call(selects, function (control) {
      control.addEventListener("change", function () {
        if (form.requestSubmit) {
          form.requestSubmit();
        } else {
          form.submit();
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-stream]"), watch);
    Array.prototype.forEach.call(document.querySelectorAll("form[data-autosubmit]"), autosubmit);
  });
})();
