// Behaviour the server cannot give: JSON notes from the WebSocket, relative
// times, the log's pause and auto-scroll, the log dialog, copy to clipboard;
// for operators: command answers shown also when refused, the reason of a
// prompt sent as a form field, the row selection kept across live updates.
// Everything the server sends is swapped by htmx; nothing here builds HTML.
(function () {
  "use strict";

  var paused = false;
  var buffered = [];
  var MAX_LOG_LINES = 5000;

  function refresh(target) {
    var ids = { servers: "servers-table", heartbeat: "heartbeat-table", actions: "actions-tables", logs: "log-box" };
    var el = document.getElementById(ids[target]);
    if (el) { htmx.trigger(el, "wm-refresh"); }
  }

  var refreshTimer = null;
  function refreshSoon(target) {
    if (refreshTimer) { return; }
    refreshTimer = setTimeout(function () { refreshTimer = null; refresh(target); }, 300);
  }

  document.addEventListener("htmx:wsBeforeMessage", function (evt) {
    var message = evt.detail.message;
    if (typeof message !== "string") { return; }
    if (message.charAt(0) === "{") {
      evt.preventDefault();
      try {
        var note = JSON.parse(message);
        if (note.refresh) { refresh(note.refresh); }
      } catch (e) { /* not a note of ours */ }
      return;
    }
    if (dropUnseenRows(evt, message)) { return; }
    if (paused && message.indexOf('id="log-lines"') !== -1) {
      evt.preventDefault();
      buffered.push(message);
      var info = document.getElementById("log-buffered");
      if (info) { info.hidden = false; info.textContent = buffered.length + " update(s) held while paused"; }
    }
  });

  // The Actions Monitor opened without a pulse in its URL follows the
  // dispatcher to each new pulse; one opened on a pulse says when it is old.
  function pulseMoved() {
    var note = document.getElementById("pulse-moved");
    var status = document.getElementById("wm-status");
    if (!note || !status) { return; }
    var current = status.dataset.pulse || "";
    var viewing = note.dataset.viewing || "";
    if (!current || current === viewing) { note.hidden = true; return; }
    if (note.dataset.follow && mayFollow(status)) {
      sessionStorage.setItem("wm-followed", String(Date.now()));
      // The new pulse, with the operator's filter and sort, from its first page.
      var params = new URLSearchParams(window.location.search);
      ["tree", "shot", "page", "follow"].forEach(function (name) { params.delete(name); });
      var query = params.toString();
      window.location.replace(window.location.pathname + (query ? "?" + query : ""));
      return;
    }
    if (note.dataset.follow && !recheck) {
      // Held back (just followed, or Redis away): look again shortly rather
      // than wait for the next live message, which a quiet plant may not send.
      recheck = setTimeout(function () { recheck = null; pulseMoved(); }, FOLLOW_PAUSE_MS);
    }
    var parts = current.split(":");
    var shown = viewing ? "You are looking at " + viewing.replace(":", " ") : "No pulse is shown here yet";
    note.querySelector("[data-text]").textContent = shown +
      "; the dispatcher's current pulse is " + parts[0] + " " + parts[1] + ".";
    var link = note.querySelector("[data-link]");
    link.textContent = "Show " + parts[0] + " " + parts[1];
    link.href = "?tree=" + encodeURIComponent(parts[0]) + "&shot=" + encodeURIComponent(parts[1]);
    note.hidden = false;
  }

  // Follow only when nothing of the operator's would be lost or looped:
  // not while typing, a dialog is open, a request is on its way or a
  // command's answer is shown; not
  // while Redis is unreachable (the page could not read the pulse, and would
  // reload for ever); not twice within a few seconds.
  var FOLLOW_PAUSE_MS = 5000;
  var recheck = null;
  function mayFollow(status) {
    var busy = document.activeElement && /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName);
    var answer = document.getElementById("command-result");
    var last = Number(sessionStorage.getItem("wm-followed") || 0);
    return !busy && !document.querySelector("dialog[open], .htmx-request") &&
      !(answer && answer.textContent.trim()) && status.dataset.redisOk === "1" &&
      Date.now() - last > FOLLOW_PAUSE_MS;
  }

  // A change is sent to every tab of its pulse, also for rows another tab
  // shows but this one does not (another page, filter or table): swap only
  // what this page has, rather than let htmx complain of missing targets.
  var parser = new DOMParser();
  function dropUnseenRows(evt, message) {
    if (message.indexOf("<tr") === -1) { return false; }
    var doc = parser.parseFromString("<table><tbody>" + message + "</tbody></table>", "text/html");
    var parts = doc.querySelectorAll("tbody > [hx-swap-oob], body > [hx-swap-oob]");
    var kept = [];
    var dropped = false;
    parts.forEach(function (part) {
      if (part.id && !document.getElementById(part.id)) { dropped = true; } else { kept.push(part.outerHTML); }
    });
    if (!dropped) { return false; }
    evt.preventDefault();
    if (kept.length) { htmx.swap(document.body, kept.join(""), { swapStyle: "none" }); }
    afterMessage();
    return true;
  }

  document.addEventListener("htmx:wsAfterMessage", afterMessage);
  function afterMessage() {
    pulseMoved();
    var lines = document.getElementById("log-lines");
    if (lines) {
      while (lines.childElementCount > MAX_LOG_LINES) { lines.removeChild(lines.firstElementChild); }
      if (!paused) { scrollLog(); }
    }
    var tables = document.getElementById("actions-tables");
    if (tables && tables.dataset.filtered) { refreshSoon("actions"); }
    tick();
  }

  function scrollLog() {
    var box = document.getElementById("log-box");
    if (box) { box.scrollTop = box.scrollHeight; }
  }

  function setWs(state) {
    var el = document.getElementById("ws-state");
    if (!el) { return; }
    el.textContent = state;
    el.className = "ws-state ws-" + state;
  }
  document.addEventListener("htmx:wsOpen", function () { setWs("live"); });
  var loggingOut = false;
  document.addEventListener("submit", function (evt) {
    if (evt.target instanceof Element && evt.target.hasAttribute("data-logout")) { loggingOut = true; }
  });
  document.addEventListener("htmx:wsClose", function (evt) {
    setWs("offline");
    // 4401: this login ended (logged out in another tab): no more live data.
    // Not in the tab logging out: its own answer is on the way.
    if (evt.detail && evt.detail.event && evt.detail.event.code === 4401 && !loggingOut) {
      window.location.assign("/accounts/login/?next=" +
        encodeURIComponent(window.location.pathname + window.location.search));
    }
  });
  document.addEventListener("htmx:wsError", function () { setWs("offline"); });

  // After a reconnect the page may have missed changes: fetch its parts again.
  var opened = false;
  document.addEventListener("htmx:wsOpen", function () {
    if (opened) { ["servers", "heartbeat", "actions", "logs"].forEach(refresh); }
    opened = true;
  });

  function ago(seconds) {
    if (seconds < 0) { seconds = 0; }
    if (seconds < 90) { return Math.round(seconds) + " s"; }
    if (seconds < 5400) { return Math.round(seconds / 60) + " min"; }
    return Math.round(seconds / 3600) + " h";
  }

  function tick() {
    var now = Date.now() / 1000;
    document.querySelectorAll("time[data-ts]").forEach(function (el) {
      var ts = parseFloat(el.dataset.ts);
      if (isNaN(ts)) { return; }
      el.textContent = el.dataset.elapsed ? "running " + ago(now - ts) : ago(now - ts) + " ago";
    });
  }
  setInterval(tick, 1000);

  document.addEventListener("click", function (evt) {
    var target = evt.target;
    if (!(target instanceof Element)) { return; }
    if (target.id === "log-pause") {
      paused = !paused;
      target.setAttribute("aria-pressed", paused ? "true" : "false");
      target.textContent = paused ? "Resume" : "Pause";
      if (!paused) {
        var held = buffered; buffered = [];
        var info = document.getElementById("log-buffered");
        if (info) { info.hidden = true; }
        held.forEach(function (html) {
          htmx.swap("#log-lines", html, { swapStyle: "none" });
        });
        scrollLog();
      }
    }
    var copy = target.closest("[data-copy]");
    if (copy) {
      var source = document.getElementById(copy.dataset.copy);
      if (source) { copyText(source.textContent, copy); }
    }
  });

  function copyText(text, button) {
    function done() { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 1500); }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
      return;
    }
    var area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); done(); } finally { document.body.removeChild(area); }
  }

  document.addEventListener("htmx:afterSwap", function (evt) {
    if (evt.detail.target && evt.detail.target.id === "log-dialog-body") {
      var dialog = document.getElementById("log-dialog");
      if (dialog && !dialog.open) { dialog.showModal(); }
    }
    if (evt.detail.target && evt.detail.target.id === "log-lines") { scrollLog(); }
    tick();
  });

  document.addEventListener("change", function (evt) {
    var el = evt.target;
    if (el instanceof HTMLSelectElement && el.hasAttribute("data-autosubmit")) { el.form.submit(); }
  });

  document.addEventListener("DOMContentLoaded", function () { tick(); scrollLog(); });

  // --- operator commands ---------------------------------------------------

  // A refused command (400), a denial (403) or Redis down (503) still has an
  // answer to show in the result area or the log dialog: let htmx swap it.
  var ANSWERED = [400, 403, 409, 503];
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var target = evt.detail.target;
    if (!target || ANSWERED.indexOf(evt.detail.xhr.status) === -1) { return; }
    if (target.id === "command-result" || target.id === "log-dialog-body" ||
        target.hasAttribute("data-answers")) {
      evt.detail.shouldSwap = true;
      evt.detail.isError = false;
    }
  });

  // The answer of hx-prompt travels as the form field "reason", not as a
  // header (headers cannot carry every character an operator may type).
  document.addEventListener("htmx:configRequest", function (evt) {
    var headers = evt.detail.headers;
    if (headers && Object.prototype.hasOwnProperty.call(headers, "HX-Prompt")) {
      var reason = headers["HX-Prompt"];
      delete headers["HX-Prompt"];
      if (reason) { evt.detail.parameters.reason = reason; }
    }
  });

  // What is typed into the dispatcher bar is checked by the server before
  // the browser asks its question (confirm, or the reason prompt): bad input
  // is refused at once, next to its field, and no one is asked to confirm a
  // command that cannot be sent. The server checks again when it is sent.
  document.addEventListener("htmx:confirm", function (evt) {
    var elt = evt.detail.elt;
    var form = elt && elt.closest ? elt.closest("form[data-check-first]") : null;
    if (!form || evt.detail.verb !== "post" || !elt.closest("[hx-confirm], [hx-prompt]")) { return; }
    evt.preventDefault();
    if (form.dataset.checking) { return; }  // a double click: one question
    form.dataset.checking = "1";
    var headers = { "HX-Request": "true", "HX-Current-URL": location.href, "WM-Check-Only": "1" };
    fetch(evt.detail.path, { method: "POST", body: new FormData(form), headers: headers, credentials: "same-origin" })
      .then(function (response) {
        var away = response.headers.get("HX-Redirect");
        if (away) { location.href = away; return; }
        if (response.status === 204) {
          // The checked fields hold: their earlier messages no longer apply
          // (another field's, e.g. a bad tree under Abort Sequence, still does).
          var checked = (response.headers.get("WM-Checked") || "").split(",");
          var left = false;
          form.querySelectorAll(".field-error[data-for]").forEach(function (span) {
            var input = document.getElementById(span.dataset.for);
            if (input && checked.indexOf(input.name) !== -1) { span.textContent = ""; }
            left = left || Boolean(span.textContent.trim());
          });
          var area = document.getElementById("command-result");
          if (area && !left) { area.replaceChildren(); }
          markInvalid();
          // The server may ask its own question (quit); htmx reads the
          // attribute while it asks, so it is put back right after.
          var question = response.headers.get("WM-Question");
          var asker = question ? elt.closest("[hx-prompt]") : null;
          var usual = asker ? asker.getAttribute("hx-prompt") : null;
          if (asker) { asker.setAttribute("hx-prompt", question); }
          try { evt.detail.issueRequest(false); } finally {
            if (asker) { asker.setAttribute("hx-prompt", usual); }
          }
          return;
        }
        return response.text().then(function (html) {
          htmx.swap("#command-result", html, { swapStyle: "innerHTML" });
        });
      })
      .catch(function () { evt.detail.issueRequest(false); })  // unchecked: ask, the server still checks
      .finally(function () { delete form.dataset.checking; });
  });

  // No answer at all (network down, console restarting): say so, as text.
  function sayUnanswered(evt) {
    var area = document.getElementById("command-result");
    var source = evt.detail && evt.detail.requestConfig ? evt.detail.requestConfig.elt : null;
    if (!area || !source || !source.closest || !source.closest("[hx-target='#command-result']")) { return; }
    var p = document.createElement("p");
    p.className = "result result-unreachable";
    p.textContent = "The console did not answer: the command may not have been sent. Check the Audit tab before trying again.";
    area.replaceChildren(p);
  }
  document.addEventListener("htmx:sendError", sayUnanswered);
  document.addEventListener("htmx:responseError", function (evt) {
    if (ANSWERED.indexOf(evt.detail.xhr.status) === -1) { sayUnanswered(evt); }
  });

  // Field messages arrive next to their fields; mark the fields for assistive tech.
  function markInvalid() {
    document.querySelectorAll(".field-error[data-for]").forEach(function (span) {
      var input = document.getElementById(span.dataset.for);
      if (!input) { return; }
      if (span.textContent.trim()) { input.setAttribute("aria-invalid", "true"); }
      else { input.removeAttribute("aria-invalid"); }
    });
  }

  // Rows are replaced by live updates: the selection lives here, by path.
  var selected = new Set();
  function restoreSelection() {
    var boxes = document.querySelectorAll("input[data-select-action]");
    boxes.forEach(function (box) { box.checked = selected.has(box.value); });
    var count = 0;
    selected.forEach(function () { count += 1; });
    var info = document.getElementById("bulk-count");
    if (info) {
      info.textContent = count ? count + " action(s) selected" : "No action selected: tick rows to act on several at once.";
    }
    document.querySelectorAll("[data-needs-selection]").forEach(function (button) { button.disabled = count === 0; });
  }
  document.addEventListener("change", function (evt) {
    var box = evt.target;
    if (box instanceof HTMLInputElement && box.hasAttribute("data-select-action")) {
      if (box.checked) { selected.add(box.value); } else { selected.delete(box.value); }
      restoreSelection();
    }
  });
  document.addEventListener("click", function (evt) {
    var target = evt.target;
    if (!(target instanceof Element)) { return; }
    if (target.closest("[data-clear-selection]")) { selected.clear(); restoreSelection(); }
    if (target.closest("[data-dismiss-result]")) {
      var area = document.getElementById("command-result");
      if (area) { area.replaceChildren(); }
    }
  });
  // A selected row no longer on the page (another pulse, filtered away) is dropped.
  function pruneSelection() {
    var present = new Set();
    document.querySelectorAll("input[data-select-action]").forEach(function (box) { present.add(box.value); });
    selected.forEach(function (path) { if (!present.has(path)) { selected.delete(path); } });
  }

  document.addEventListener("htmx:wsAfterMessage", restoreSelection);
  document.addEventListener("htmx:afterSettle", function () { pruneSelection(); restoreSelection(); markInvalid(); });
  document.addEventListener("htmx:oobAfterSwap", markInvalid);
  document.addEventListener("DOMContentLoaded", restoreSelection);
})();
