// Search excerpts when the pages are opened from files (file://).
//
// Sphinx's search page fetches each result page to show an excerpt, and a
// browser refuses fetch() for file:// URLs, so the results showed titles only.
// The build writes every page's text into skvrf_search_texts.js (loaded by the
// search page only); over file:// this answers the search's fetch of a page
// from that text. Over http(s) nothing changes.
(function () {
  "use strict";
  if (window.location.protocol !== "file:") return;
  const realFetch = window.fetch ? window.fetch.bind(window) : null;
  window.fetch = function (resource, options) {
    const texts = window.SKVRF_PAGE_TEXTS || {};
    const root = document.documentElement.dataset.content_root || "";
    const suffix =
      (window.DOCUMENTATION_OPTIONS || {}).FILE_SUFFIX || ".html";
    let name = String(resource).split("#")[0];
    if (root && name.startsWith(root)) name = name.slice(root.length);
    if (name.endsWith(suffix)) name = name.slice(0, -suffix.length);
    if (Object.prototype.hasOwnProperty.call(texts, name)) {
      const main = document.createElement("div");
      main.setAttribute("role", "main");
      main.textContent = texts[name];
      const html = main.outerHTML;
      return Promise.resolve({ ok: true, text: () => Promise.resolve(html) });
    }
    if (realFetch) return realFetch(resource, options);
    return Promise.reject(new Error("fetch is not available"));
  };
})();
