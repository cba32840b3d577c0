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

// Finding a building: while someone types into the place box, the buildings and places of their area that
// match are offered as links that narrow the list to one (the server's /spots; the list offers them too).
(function () {
  const box = document.querySelector("form.filters input[name=place]");
  if (!box || !window.fetch) {
    return;
  }
  const form = box.form;
  const offered = document.createElement("ul");
  offered.className = "suggestions";
  offered.setAttribute("aria-live", "polite");
  (box.closest("label") || box).insertAdjacentElement("afterend", offered);
  let waiting = null;

  function linkTo(spot) {
    const query = new URLSearchParams(new FormData(form));
    query.set("spot", spot.value);
    query.set("place", spot.name);
    query.delete("after");
    const link = document.createElement("a");
    link.href = form.getAttribute("action") + "?" + query.toString();
    link.textContent = spot.name + " (" + spot.code + (spot.address ? ", " + spot.address : "") + ")";
    const item = document.createElement("li");
    item.appendChild(link);
    return item;
  }

  async function suggest() {
    const text = box.value.trim();
    offered.replaceChildren();
    if (!text) {
      return;
    }
    const response = await fetch("/spots?q=" + encodeURIComponent(text), { credentials: "same-origin" });
    if (!response.ok || box.value.trim() !== text) {
      return;
    }
    const found = await response.json();
    offered.replaceChildren(...found.results.map(linkTo));
  }

  box.addEventListener("input", () => {
    // A different text no longer means the building chosen before.
    const chosen = form.querySelector("input[type=hidden][name=spot]");
    if (chosen) {
      chosen.remove();
    }
    clearTimeout(waiting);
    waiting = setTimeout(() => suggest().catch(() => {}), 250);
  });
})();
