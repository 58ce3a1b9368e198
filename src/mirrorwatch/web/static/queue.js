// Keyboard review in the queue: j/k move, x check, c confirm, d dismiss, s second look, o open, n note.
// The page works without this file: every action is a plain form button.
(function () {
  "use strict";
  var table = document.getElementById("queue");
  if (!table) return;
  var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr[data-id]"));
  if (!rows.length) return;
  var key = "mw-queue-pos:" + location.pathname + location.search;
  var pos = parseInt(sessionStorage.getItem(key) || "0", 10);
  if (!(pos >= 0 && pos < rows.length)) pos = Math.max(0, Math.min(rows.length - 1, pos || 0));

  function show(i) {
    rows.forEach(function (r) { r.classList.remove("current"); });
    pos = Math.max(0, Math.min(rows.length - 1, i));
    rows[pos].classList.add("current");
    rows[pos].scrollIntoView({ block: "nearest" });
    sessionStorage.setItem(key, String(pos));
  }

  function press(state) {
    var btn = rows[pos].querySelector('button[name="one"][value$=":' + state + '"]');
    if (btn) btn.click();
  }

  document.addEventListener("keydown", function (ev) {
    var t = ev.target;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) {
      if (ev.key === "Escape") t.blur();
      return;
    }
    switch (ev.key) {
      case "j": show(pos + 1); break;
      case "k": show(pos - 1); break;
      case "x": var cb = rows[pos].querySelector('input[type="checkbox"]'); if (cb) cb.checked = !cb.checked; break;
      case "c": press("confirmed"); break;
      case "d": press("dismissed"); break;
      case "s": press("second_look"); break;
      case "o": case "Enter": var a = rows[pos].querySelector("a.open"); if (a) location.href = a.href; break;
      case "n": var note = document.getElementById("note"); if (note) { note.focus(); } break;
      default: return;
    }
    ev.preventDefault();
  });
  rows.forEach(function (r, i) { r.addEventListener("click", function () { show(i); }); });
  show(pos);
})();
