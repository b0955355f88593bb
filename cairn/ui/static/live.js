// Live lineage: while a workflow page is open, fetch its steps fragment and swap it in when a
// new step has committed. No framework; served by Cairn itself.
(function () {
  "use strict";
  var box = document.getElementById("lineage");
  if (!box) { return; }
  var src = box.getAttribute("data-src");
  var status = document.getElementById("live");
  var open = function () {
    var ids = {};
    box.querySelectorAll("details[open] .seq").forEach(function (el) { ids[el.textContent] = true; });
    return ids;
  };
  var tick = function () {
    fetch(src, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.text(); })
      .then(function (html) {
        var current = box.querySelector("#steps");
        var next = document.createElement("div");
        next.innerHTML = html;
        var fresh = next.querySelector("#steps");
        if (fresh && (!current || fresh.getAttribute("data-count") !== current.getAttribute("data-count"))) {
          var keep = open();
          fresh.querySelectorAll("details").forEach(function (d) {
            var seq = d.querySelector(".seq");
            if (seq && keep[seq.textContent]) { d.open = true; }
          });
          box.replaceChildren(fresh);
          var empty = document.getElementById("no-steps");
          if (empty) { empty.remove(); }
        }
        if (status) { status.textContent = "live: " + fresh.getAttribute("data-count") + " commits"; }
      })
      .catch(function () { if (status) { status.textContent = "live: paused (server unreachable)"; } })
      .then(function () { window.setTimeout(tick, 1000); });
  };
  window.setTimeout(tick, 1000);
})();
