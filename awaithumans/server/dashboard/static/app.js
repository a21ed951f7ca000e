// awaithumans dashboard: progressive enhancement only. Every page works without this file.
"use strict";

// Elements with data-live="<url>" re-render from that URL whenever the server reports a
// change. The server long-polls /ui/changes?since=N, so updates arrive as they happen and
// an idle page costs one request every ~25 s.
(function () {
  const targets = document.querySelectorAll("[data-live]");
  if (!targets.length) return;
  let since = Number(document.body.dataset.sequence || "0");

  async function refresh(el) {
    const resp = await fetch(el.dataset.live, { headers: { "Accept": "text/html" }, credentials: "same-origin" });
    if (resp.ok) {
      const html = await resp.text();
      if (html !== el.innerHTML) el.innerHTML = html;
    }
  }

  async function loop() {
    for (;;) {
      try {
        const resp = await fetch("/ui/changes?since=" + since, { credentials: "same-origin" });
        if (!resp.ok) throw new Error("status " + resp.status);
        const data = await resp.json();
        if (data.sequence !== since) {
          since = data.sequence;
          await Promise.all(Array.from(targets, refresh));
        }
      } catch (err) {
        await new Promise((r) => setTimeout(r, 3000));
      }
    }
  }
  loop();
})();

// Buttons with data-confirm ask before submitting their form.
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
});
