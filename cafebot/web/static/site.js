// Times in the reader's own time zone: each <time datetime="…Z" data-local> is rewritten
// with the browser's zone; without JavaScript it reads in the series' time zone.
(function () {
  "use strict";
  function localTimes() {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    var format = new Intl.DateTimeFormat(undefined, {
      weekday: "short", day: "numeric", month: "short", year: "numeric",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short"
    });
    document.querySelectorAll("time[data-local]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime())) { return; }
      el.setAttribute("title", el.textContent.trim() + " (the series' time zone)");
      el.textContent = format.format(when) + (zone ? " (" + zone + ")" : "");
      el.setAttribute("data-tz", zone);
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", localTimes);
  } else {
    localTimes();
  }
})();

// The static site's search (cafebot site build): the page's results come from the
// prebuilt index, with the served search's rule: every word, letter case aside, must
// occur in the entry; "quoted words" together; newest first, 20 to a page.
(function () {
  "use strict";
  function terms(query) {
    var found = [], re = /"([^"]*)"|(\S+)/g, m;
    while ((m = re.exec(query)) !== null) {
      var word = (m[1] !== undefined ? m[1] : m[2]).split(/\s+/).join(" ").trim();
      if (word) { found.push(word); }
    }
    return found;
  }
  function marked(text, words) {
    var out = document.createDocumentFragment(), lower = text.toLowerCase(), at = 0;
    while (at < text.length) {
      var best = -1, length = 0;
      words.forEach(function (w) {
        var i = lower.indexOf(w.toLowerCase(), at);
        if (i !== -1 && (best === -1 || i < best || (i === best && w.length > length))) {
          best = i; length = w.length;
        }
      });
      if (best === -1) { break; }
      out.appendChild(document.createTextNode(text.slice(at, best)));
      var mark = document.createElement("mark");
      mark.textContent = text.slice(best, best + length);
      out.appendChild(mark);
      at = best + length;
    }
    out.appendChild(document.createTextNode(text.slice(at)));
    return out;
  }
  function say(box, text) {
    var p = document.createElement("p");
    p.textContent = text;
    box.appendChild(p);
  }
  function run() {
    var box = document.getElementById("results");
    if (!box || !box.hasAttribute("data-index")) { return; }
    var params = new URLSearchParams(window.location.search);
    var query = (params.get("q") || "").trim(), only = params.get("series") || "";
    var page = parseInt(params.get("page") || "1", 10) || 1;
    var input = document.getElementById("q");
    if (input) { input.value = query; }
    if (!query) { return; }
    var words = terms(query).map(function (w) { return w.toLowerCase(); });
    fetch(box.getAttribute("data-index")).then(function (r) { return r.json(); }).then(function (index) {
      box.textContent = "";
      var hits = index.entries.filter(function (e) {
        return (!only || e[0] === only) && words.every(function (w) { return e[5].indexOf(w) !== -1; });
      });
      if (!hits.length) { say(box, "Nothing found for \u201c" + query + "\u201d. Try fewer or shorter words."); return; }
      var per = parseInt(box.getAttribute("data-per-page"), 10), pages = Math.ceil(hits.length / per);
      page = Math.min(Math.max(page, 1), pages);
      say(box, hits.length + " found, newest first" + (pages > 1 ? " (page " + page + " of " + pages + ")" : "") + ".");
      var list = document.createElement("ol");
      list.className = "results";
      hits.slice((page - 1) * per, page * per).forEach(function (e) {
        var li = document.createElement("li"), a = document.createElement("a");
        a.href = box.getAttribute("data-base") + e[0] + "/" + e[1] + "/" + (e[2] ? "#" + e[2] : "");
        a.textContent = e[3];
        li.appendChild(a);
        li.appendChild(document.createTextNode(" "));
        li.appendChild(marked(e[4], words));
        list.appendChild(li);
      });
      box.appendChild(list);
      if (pages > 1) {
        var nav = document.createElement("nav"), ul = document.createElement("ul");
        nav.className = "pages";
        nav.setAttribute("aria-label", "Result pages");
        [[page - 1, "Newer results", "prev"], [page + 1, "Older results", "next"]].forEach(function (p) {
          if (p[0] < 1 || p[0] > pages) { return; }
          params.set("page", String(p[0]));
          var li = document.createElement("li"), a = document.createElement("a");
          a.href = "?" + params.toString();
          a.rel = p[2];
          a.textContent = p[1];
          li.appendChild(a);
          ul.appendChild(li);
        });
        nav.appendChild(ul);
        box.appendChild(nav);
      }
    }).catch(function () { box.textContent = ""; say(box, "The search index could not be read."); });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", run);
  } else {
    run();
  }
})();
