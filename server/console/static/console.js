// fieldsync console: the only script. A page marked data-live reloads when
// the server says a sync arrived (server-sent events from /console/events),
// unless someone is typing in one of its forms; then it reloads once the
// field loses focus.
(function () {
  "use strict";
  if (!document.body || document.body.dataset.live !== "1" || !window.EventSource) { return; }
  var pending = false;
  function busy() {
    var el = document.activeElement;
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA") && el.type !== "radio" && el.value !== "";
  }
  function reload() {
    if (busy()) { pending = true; return; }
    window.location.reload();
  }
  document.addEventListener("focusout", function () { if (pending) { pending = false; setTimeout(reload, 0); } });
  var es = new EventSource("/console/events");
  es.addEventListener("sync", reload);
})();
