/* Paper has no toggles: every folded section ("How this was computed") is opened before the browser
   prints the page, so the sheet holds the method and not a bare title; the sections the reader had
   closed are closed again after printing. `make pdf` opens them itself (greenery.publisher.pdf). */
(function () {
  var opened = [];
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details:not([open])").forEach(function (d) { d.open = true; opened.push(d); });
  });
  window.addEventListener("afterprint", function () {
    opened.forEach(function (d) { d.open = false; });
    opened = [];
  });
})();
