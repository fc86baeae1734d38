// sitedeploy status page: copy buttons on commands, and a refresh of the page's content while
// the tab is visible. The page works without this script (a <noscript> meta refresh instead).
"use strict";
(function () {
  function addCopyButtons(root) {
    if (!navigator.clipboard) return;
    root.querySelectorAll("code.cmd").forEach(function (code) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy";
      button.textContent = "copy";
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(code.textContent).then(function () {
          button.textContent = "copied";
        }, function () {
          button.textContent = "select and copy";
        });
      });
      code.after(button);
    });
  }

  function refresh() {
    if (document.visibilityState !== "visible") return;
    fetch(location.pathname, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (text) {
        if (!text) return;
        var fresh = new DOMParser().parseFromString(text, "text/html");
        var next = fresh.getElementById("status");
        var open = Array.from(document.querySelectorAll("#history details[open] summary"))
          .map(function (s) { return s.firstChild.textContent.trim(); });
        if (!next) return;
        next.querySelectorAll("#history details").forEach(function (d) {
          d.open = open.indexOf(d.querySelector("summary").firstChild.textContent.trim()) >= 0;
        });
        document.getElementById("status").replaceWith(document.adoptNode(next));
        document.title = fresh.title;
        addCopyButtons(document);
      })
      .catch(function () { /* the next round tries again */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    addCopyButtons(document);
    var seconds = parseInt(document.body.dataset.refresh, 10) || 30;
    setInterval(refresh, seconds * 1000);
  });
})();
