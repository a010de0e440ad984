// metaengine admin UI: the theme switch, confirmations, and live rows on a grid. No framework.
"use strict";
(function () {
  var root = document.documentElement;
  var saved = localStorage.getItem("metaengine-theme");
  if (saved) root.dataset.theme = saved;
  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.querySelector("[data-theme-toggle]");
    if (toggle) toggle.addEventListener("click", function () {
      var dark = root.dataset.theme ? root.dataset.theme === "dark"
        : matchMedia("(prefers-color-scheme: dark)").matches;
      root.dataset.theme = dark ? "light" : "dark";
      localStorage.setItem("metaengine-theme", root.dataset.theme);
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!confirm(form.dataset.confirm)) e.preventDefault();
      });
    });
    var live = document.getElementById("live");
    if (live && live.dataset.events && window.EventSource) follow(live);
  });

  // Rows of the grid change as the realtime feed (SPEC §14) reports changes; new records are
  // counted, with a link to reload (they may not belong to this page's filter and order).
  function follow(live) {
    var added = 0;
    var source = new EventSource(live.dataset.events);
    live.textContent = "live";
    source.addEventListener("create", function () {
      added += 1;
      live.innerHTML = "";
      var a = document.createElement("a");
      a.href = location.href;
      a.id = "live-new";
      a.textContent = added + " new record" + (added > 1 ? "s" : "") + ": reload";
      live.appendChild(a);
    });
    source.addEventListener("update", function (e) { mark(e, "live-changed"); });
    source.addEventListener("delete", function (e) { mark(e, "live-deleted"); });
    source.onerror = function () { live.textContent = "live updates paused"; };
  }

  function mark(e, cls) {
    var data;
    try { data = JSON.parse(e.data); } catch (_) { return; }
    var row = document.querySelector('tr[data-id="' + CSS.escape(data.id) + '"]');
    if (!row) return;
    row.classList.remove("live-changed");
    void row.offsetWidth;
    row.classList.add(cls);
    if (cls === "live-changed" && data.record) {
      var heads = document.querySelectorAll("#records thead th a[data-sort]");
      heads.forEach(function (h, i) {
        var v = data.record[h.dataset.sort];
        var cell = row.children[i];
        if (v === undefined || !cell || cell.querySelector("a")) return;
        cell.className = v === null ? "null" : "";
        cell.textContent = v === null ? "" : typeof v === "string" ? v : JSON.stringify(v);
      });
    }
  }
})();
