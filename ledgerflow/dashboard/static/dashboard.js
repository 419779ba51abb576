// Live updates: the change feed as server-sent events. A page marks what it shows with
// data-watch (instance IDs, or "*" for any change); a message naming one of them makes htmx
// re-fetch the page's live part ("lf-change" on the body), at most once a second.
(function () {
  "use strict";
  var source = document.querySelector("[data-live]");
  if (!source || !window.EventSource) return;
  var dot = document.getElementById("live-dot");
  var pending = false, last = 0;

  function watched(ids) {
    var el = document.querySelector("[data-watch]");
    if (!el) return false;
    var watch = el.getAttribute("data-watch").split(" ");
    return watch.indexOf("*") >= 0 || ids.indexOf("*") >= 0 || ids.some(function (id) { return watch.indexOf(id) >= 0; });
  }

  function refresh() {
    var wait = Math.max(0, 1000 - (Date.now() - last));
    if (pending) return;
    pending = true;
    setTimeout(function () {
      pending = false;
      last = Date.now();
      htmx.trigger(document.body, "lf-change");
    }, wait);
  }

  var events = new EventSource(source.getAttribute("data-live"));
  events.onopen = function () { if (dot) dot.classList.add("on"); };
  events.onerror = function () { if (dot) dot.classList.remove("on"); };
  events.onmessage = function (e) { if (watched(e.data.split(" "))) refresh(); };
})();
