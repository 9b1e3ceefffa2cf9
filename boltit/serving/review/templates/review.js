// Keyboard shortcuts and the live panel; every action is also a plain form button.
(function () {
  "use strict";
  var cards = Array.prototype.slice.call(document.querySelectorAll("article.ticket"));
  var current = 0;

  function focusCard(index) {
    if (!cards.length) return;
    current = Math.max(0, Math.min(cards.length - 1, index));
    cards.forEach(function (card, i) { card.classList.toggle("current", i === current); });
    cards[current].focus();
  }

  function press(selector) {
    var target = cards.length ? cards[current].querySelector(selector) : null;
    if (target) target.click();
  }

  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea") return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var card = event.target.closest ? event.target.closest("article.ticket") : null;
    if (card) current = cards.indexOf(card);
    var key = event.key;
    if (key === "j") focusCard(current + 1);
    else if (key === "k") focusCard(current - 1);
    else if (key === "c") press('button[data-key="c"]');
    else if (key === "1" || key === "2" || key === "3") press('button[data-key="' + key + '"]');
    else if (key === "e") {
      var select = cards.length ? cards[current].querySelector('select[data-key="e"]') : null;
      if (select) select.focus();
    } else if (key === "A") {
      var bulk = document.querySelector('#confirm-page button');
      if (bulk) bulk.click();
    } else if (key === "n") {
      var next = document.getElementById("next-page");
      if (next) next.click();
    } else return;
    event.preventDefault();
  });

  function fill(element) {
    if (!element) return;
    fetch(element.getAttribute("data-src"), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html !== null) element.innerHTML = html; })
      .catch(function () { /* the next refresh tries again */ });
  }
  var progress = document.getElementById("progress");
  var panel = document.getElementById("panel");
  function refresh() { fill(progress); fill(panel); }
  // The progress bar and the panel count many tickets: fetched when the browser is idle
  // after loading, since counting shares the machine's CPU with the first paint.
  var later = window.requestIdleCallback || function (run) { setTimeout(run, 200); };
  window.addEventListener("load", function () {
    later(refresh);
    setInterval(refresh, 10000);
  });
  focusCard(0);
})();
