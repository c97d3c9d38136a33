// paperboy: small progressive enhancements. Everything works without this file.
(function () {
  "use strict";

  var MATH_OPTIONS = {
    delimiters: [
      { left: "$$", right: "$$", display: true },
      { left: "\\[", right: "\\]", display: true },
      { left: "$", right: "$", display: false },
      { left: "\\(", right: "\\)", display: false }
    ],
    throwOnError: false,
    strict: "ignore",
    trust: false,
    maxSize: 20,
    maxExpand: 500
  };

  // Typeset $…$ and \(…\) in abstracts and titles. The text arrives autoescaped from the server;
  // KaTeX (trust: false) only ever produces its own markup from it.
  function renderMath(root) {
    if (!root || typeof window.renderMathInElement !== "function") return;
    var nodes = root.matches && root.matches(".math") ? [root] : [];
    nodes = nodes.concat(Array.prototype.slice.call(root.querySelectorAll(".math:not([data-math])")));
    nodes.forEach(function (el) {
      if (el.hasAttribute("data-math")) return;
      el.setAttribute("data-math", "done");
      try {
        window.renderMathInElement(el, MATH_OPTIONS);
      } catch (e) {
        /* leave the source text as it is */
      }
    });
  }

  // An avatar that cannot load (offline hub, gone upstream) leaves the initial underneath it showing.
  function dropBrokenAvatars(root) {
    Array.prototype.forEach.call(root.querySelectorAll(".avatar img"), function (img) {
      if (img.complete && img.naturalWidth === 0) img.remove();
    });
  }
  document.addEventListener("error", function (evt) {
    var el = evt.target;
    if (el && el.tagName === "IMG" && el.parentElement && el.parentElement.classList.contains("avatar")) el.remove();
  }, true);

  document.addEventListener("DOMContentLoaded", function () {
    renderMath(document.body);
    dropBrokenAvatars(document);
  });
  // Search as you type: leave empty fields out of the request, so the address bar (hx-push-url) reads
  // /papers?q=… rather than /papers?q=…&from=&to=&category=, and an emptied box goes back to /papers.
  document.addEventListener("htmx:configRequest", function (evt) {
    var detail = evt.detail;
    if (!detail || String(detail.verb).toLowerCase() !== "get" || !detail.parameters) return;
    var params = detail.parameters;
    Object.keys(params).forEach(function (name) {
      var value = params[name];
      var values = Array.isArray(value) ? value : [value];
      if (values.every(function (v) { return typeof v === "string" && v.trim() === ""; })) delete params[name];
    });
  });

  // Cards appended by "Load more" (htmx) are typeset too.
  document.addEventListener("htmx:load", function (evt) {
    var elt = evt.detail && evt.detail.elt;
    renderMath(elt);
    if (elt && elt.querySelectorAll) dropBrokenAvatars(elt);
  });
})();
