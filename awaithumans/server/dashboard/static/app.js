// awaithumans dashboard: progressive enhancement only. Every page works without this file.
"use strict";

// Elements with data-live="<url>" re-render from that URL whenever the server reports a
// change. The server long-polls /ui/changes?since=N, so updates arrive as they happen and
// an idle page costs one request every ~25 s.
(function () {
  const targets = document.querySelectorAll("[data-live]");
  if (!targets.length) return;
  let since = Number(document.body.dataset.sequence || "0");
  const pause = (ms) => new Promise((r) => setTimeout(r, ms));

  // What had focus inside a live element, so a keyboard user keeps their place when the
  // element re-renders (links are found again by href, anything else by id).
  function focusKey(el) {
    const active = document.activeElement;
    if (!active || active === el || !el.contains(active)) return null;
    if (active.id) return "#" + CSS.escape(active.id);
    const href = active.getAttribute("href");
    return href ? "[href=\"" + CSS.escape(href) + "\"]" : null;
  }

  async function refresh(el) {
    const resp = await fetch(el.dataset.live, {
      headers: { "Accept": "text/html" }, credentials: "same-origin", redirect: "error",
    });
    if (resp.status === 401) throw new Error("signed out");
    if (!resp.ok) return;
    const html = await resp.text();
    // Compare with what the server sent last time, not with innerHTML (the browser
    // re-serialises it, so it would almost never match).
    if (html === el.liveHtml) return;
    el.liveHtml = html;
    const key = focusKey(el);
    // Boxes ticked for a bulk answer stay ticked when the list re-renders (by id).
    const ticked = Array.from(el.querySelectorAll("input[type=checkbox][form]:checked"), (i) => i.id);
    el.innerHTML = html;
    for (const id of ticked) {
      const box = document.getElementById(id);
      if (box && !box.disabled) box.checked = true;
    }
    el.dispatchEvent(new Event("change", { bubbles: true }));
    if (key) {
      const again = el.querySelector(key);
      if (again) again.focus({ preventScroll: true });
    }
  }

  async function loop() {
    for (;;) {
      try {
        const resp = await fetch("/ui/changes?timeout=25&since=" + since, { credentials: "same-origin" });
        if (resp.status === 401) return;  // signed out: the next navigation asks to sign in
        if (!resp.ok) throw new Error("status " + resp.status);
        const data = await resp.json();
        if (data.sequence !== since) {
          // Adopt the new sequence only once every element re-rendered: a failed fetch is
          // retried on the next turn instead of waiting for the next change.
          await Promise.all(Array.from(targets, refresh));
          since = data.sequence;
          // Coalesce bursts (a batch of creates): at most one re-render per second.
          await pause(1000);
        }
      } catch (err) {
        if (err && err.message === "signed out") return;
        await pause(3000);
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

// The Users page's Slack member picker fills the member id, and the name and email when they
// are still empty. Without JavaScript the server does the same with the picked member.
(function () {
  const picker = document.querySelector("select[data-fills-member]");
  if (!picker) return;
  picker.addEventListener("change", function () {
    const option = picker.selectedOptions[0];
    if (!option || !option.value) return;
    const form = picker.form;
    const set = (name, value, always) => {
      const input = form.elements[name];
      if (input && value && (always || !input.value)) input.value = value;
    };
    set("slack_user_id", option.value, true);
    set("display_name", option.dataset.name, false);
    set("email", option.dataset.email, false);
  });
})();

// The queue's bulk answer: say how many tasks are ticked, and keep the button off until one
// is. Without JavaScript the button always works and the server says what is missing.
(function () {
  const form = document.getElementById("bulk-form");
  if (!form) return;
  const button = form.querySelector("[data-bulk-submit]");
  const count = form.querySelector("[data-bulk-count]");
  const hint = count ? count.textContent : "";
  const update = () => {
    const n = document.querySelectorAll("input[type=checkbox][form=bulk-form]:checked").length;
    button.disabled = n === 0;
    button.textContent = n ? "Answer " + n + " selected together" : "Answer selected together";
    if (count) count.textContent = n ? n + " selected" : hint;
  };
  // Ticking a box, and the list re-rendering, both end in a change event.
  document.addEventListener("change", update);
  update();
})();
