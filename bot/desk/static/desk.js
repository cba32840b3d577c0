// Live updates: the server says when what this page shows may have changed; the page then fetches itself
// again and replaces its live sections, leaving forms someone is typing in alone.
"use strict";

(function () {
  const watch = document.body.dataset.watch;
  if (!watch || !window.EventSource) {
    return;
  }
  const stream = new EventSource("/events?watch=" + encodeURIComponent(watch));

  function typing(section) {
    return Array.from(section.querySelectorAll("textarea, input[type=text]")).some(
      (field) => field.value.trim() !== "" || field === document.activeElement
    );
  }

  async function refresh() {
    const response = await fetch(window.location.href, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) {
      return;
    }
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const section of document.querySelectorAll("[data-live]")) {
      const replacement = fresh.getElementById(section.id);
      if (replacement && !typing(section)) {
        section.replaceWith(replacement);
      }
    }
    document.body.dataset.updated = String(Date.now());
  }

  stream.addEventListener("update", () => {
    refresh().catch(() => {});
  });
  stream.addEventListener("ended", () => {
    stream.close();
    window.location.reload();
  });
})();
