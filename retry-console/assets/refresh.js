// Live refresh of the overview: every 5 seconds the #live part is replaced by the server's
// fresh copy of it (same origin, escaped by the server; the page's CSP runs no inline script
// or handler it might hold). Without scripts the page is the same, reloaded by hand.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.fetch) {
    return;
  }
  var src = live.getAttribute("data-src");
  function tick() {
    fetch(src, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (answer) {
        if (!answer.ok) {
          throw new Error("HTTP " + answer.status);
        }
        return answer.text();
      })
      .then(function (fragment) {
        live.innerHTML = fragment;
        live.removeAttribute("data-stale");
      })
      .catch(function () {
        live.setAttribute("data-stale", "true");
      })
      .then(function () {
        window.setTimeout(tick, 5000);
      });
  }
  window.setTimeout(tick, 5000);
})();
