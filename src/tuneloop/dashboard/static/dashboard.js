// tuneloop dashboard: local times, confirmations, and short polling of live parts.
(function () {
  "use strict";

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when)) {
        el.textContent = when.toLocaleString();
        el.title = el.getAttribute("datetime");
      }
    });
  }

  function confirmations(root) {
    root.querySelectorAll("form[data-confirm]").forEach(function (form) {
      if (form.dataset.bound) return;
      form.dataset.bound = "1";
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  }

  // An element with data-live-src is re-rendered from that URL every few seconds while
  // data-live-active is "true"; the fragment says whether it is still active.
  function poll(el) {
    var every = parseInt(el.dataset.liveInterval || "2000", 10);
    function tick() {
      if (el.dataset.liveActive !== "true") return;
      if (el.contains(document.activeElement) && document.activeElement.tagName === "INPUT") {
        window.setTimeout(tick, every); // do not replace a field the user is typing in
        return;
      }
      fetch(el.dataset.liveSrc, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (response.redirected || response.status === 401) { window.location.reload(); return null; }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html !== null && html !== undefined) {
            el.innerHTML = html;
            localTimes(el);
            confirmations(el);
            var finished = el.querySelector("[data-live-finished]");
            if (finished) el.dataset.liveActive = "false";
          }
        })
        .catch(function () { /* a missed poll is retried at the next tick */ })
        .finally(function () { window.setTimeout(tick, every); });
    }
    window.setTimeout(tick, every);
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    confirmations(document);
    document.querySelectorAll("[data-live-src]").forEach(poll);
  });
})();
