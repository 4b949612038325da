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
