// The little behaviour Quell's pages need beyond htmx: opening dialogs from menus (loading their body
// the first time), closing menus, and filters that apply on change.
"use strict";

// A page answering a form's POST (a refusal shown with its errors, a secret shown once) names the
// address of its page (base.html). Putting that in the history entry makes a reload or a Back a GET of
// the page: never the form sent again, nor a POST-only URL.
const pageUrl = document.querySelector('meta[name="quell-page-url"]');
if (pageUrl) history.replaceState(history.state, "", pageUrl.content + location.hash);

function focusFirstField(dialog) {
  const first = dialog.querySelector("input:not([type=hidden]), select, textarea");
  if (first) first.focus();
}

// A dialog whose body is a `data-load` placeholder fetches it when first opened, so the page does not
// build a form most visits never use. Only a 200 from the asked URL replaces the placeholder (see the
// htmx:beforeSwap listener): an error page or the log-in page is no form.
function loadDialogBody(dialog, placeholder) {
  if (placeholder.getAttribute("aria-busy") === "true") return; // opened again while loading
  placeholder.setAttribute("aria-busy", "true");
  placeholder.textContent = "Loading…";
  const failed = () => {
    if (!placeholder.isConnected) return;
    placeholder.setAttribute("aria-busy", "false");
    const message = document.createElement("p");
    message.setAttribute("role", "alert");
    const link = document.createElement("a");
    link.href = placeholder.dataset.load;
    link.textContent = "open it on a page of its own";
    message.append("The form could not be loaded: ", link, ".");
    placeholder.replaceChildren(message);
  };
  htmx
    .ajax("GET", placeholder.dataset.load, { source: placeholder, target: placeholder, swap: "outerHTML" })
    .then(() => {
      if (placeholder.isConnected) failed();
      else if (dialog.open) focusFirstField(dialog);
    }, failed);
}

document.addEventListener("htmx:beforeSwap", (event) => {
  const target = event.detail.target;
  if (!target || !target.dataset || target.dataset.load === undefined) return;
  const asked = new URL(target.dataset.load, document.baseURI);
  const answered = event.detail.xhr.responseURL ? new URL(event.detail.xhr.responseURL) : asked;
  event.detail.shouldSwap = event.detail.xhr.status === 200 && answered.pathname === asked.pathname;
});

// However a dialog closes (Escape, Close, Cancel), focus goes back to what opened it. The browser's own
// return goes to the menu item that was clicked, hidden since its menu closed, so it lands on the body;
// the menu's button is where the person was. The close event comes after the browser's own attempt.
function returnFocusOnClose(dialog, opener) {
  dialog.addEventListener(
    "close",
    () => {
      if (opener.isConnected) opener.focus();
    },
    { once: true },
  );
}

function openDialog(id, opener) {
  const dialog = document.getElementById(id);
  if (!dialog || typeof dialog.showModal !== "function") return false;
  const placeholder = dialog.querySelector("[data-load]");
  // Without htmx the opener's link goes to the form's own page instead.
  if (placeholder && typeof htmx === "undefined") return false;
  const menu = opener.closest("details");
  if (menu) menu.removeAttribute("open");
  returnFocusOnClose(dialog, menu ? menu.querySelector("summary") : opener);
  dialog.showModal();
  if (placeholder) loadDialogBody(dialog, placeholder);
  else focusFirstField(dialog);
  return true;
}

document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-dialog]");
  if (opener && openDialog(opener.dataset.dialog, opener)) {
    event.preventDefault();
    return;
  }
  const closer = event.target.closest("[data-close-dialog]");
  if (closer) {
    const dialog = closer.closest("dialog");
    if (dialog) {
      event.preventDefault();
      dialog.close();
    } else if (closer.type === "button") {
      history.back();
    }
    return;
  }
  // A click outside an open dropdown menu closes it.
  document.querySelectorAll("details.dropdown[open]").forEach((menu) => {
    if (!menu.contains(event.target)) menu.removeAttribute("open");
  });
});

// An incident list's bulk form (views/bulk.py): "All on this page" ticks every row, and unticking a
// row unticks it (the form sends every row of the page while it is ticked, as it does without scripts).
document.addEventListener("change", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement) || !box.form || box.type !== "checkbox") return;
  if (box.checked && (box.name === "incident" || box.matches("[data-select-all]"))) {
    const actions = box.form.querySelector("details.bulk-details");
    if (actions) actions.open = true;
  }
  if (box.matches("[data-select-all]")) {
    box.form.querySelectorAll('input[type=checkbox][name="incident"]').forEach((row) => {
      row.checked = box.checked;
    });
  } else if (box.name === "incident" && !box.checked) {
    const all = box.form.querySelector("[data-select-all]");
    if (all) all.checked = false;
  }
});

// A filter that applies as soon as it changes (inline onchange= handlers are refused by the CSP).
document.addEventListener("change", (event) => {
  const field = event.target.closest && event.target.closest("[data-submit-on-change]");
  if (field && field.form) field.form.requestSubmit();
});

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const menu = event.target.closest && event.target.closest("details.dropdown[open]");
  if (menu) {
    menu.removeAttribute("open");
    menu.querySelector("summary").focus();
  }
});

// Times are shown in the zone the person chose on their profile, else in their browser's: the server
// learns that from this cookie (quell.web.middleware), so every page after the first is in it.
(() => {
  let zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch {
    return;
  }
  if (!zone || !/^[A-Za-z0-9_+/-]+$/.test(zone)) return;
  if (document.cookie.split("; ").includes(`quell_tz=${zone}`)) return;
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `quell_tz=${zone}; Path=/; Max-Age=31536000; SameSite=Lax${secure}`;
})();

// "3 h ago" and "open 2 d 4 h" stay true while a page stays open: recounted each minute by the rules
// of quell_tags.ago and quell_tags.span (change them together), by the calendar of the page's zone and
// on the server's clock (data-now), so a browser whose clock is off does not skew them.
function agoText(iso, now, today) {
  const seconds = (now - Date.parse(iso)) / 1000;
  if (seconds > -60 && seconds < 60) return "just now";
  if (seconds < 0) {
    const ahead = -seconds;
    if (ahead < 3600) return `in ${Math.floor(ahead / 60)} min`;
    return ahead < 86400 ? `in ${Math.floor(ahead / 3600)} h` : null;
  }
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  // datetime= is in the page's zone, so its first ten characters are the reader's day.
  const days = Math.round((Date.parse(today) - Date.parse(iso.slice(0, 10))) / 86400000);
  if (seconds < 86400 || days < 1) return `${Math.floor(seconds / 3600)} h ago`;
  if (days === 1) return "yesterday";
  return days < 7 ? `${days} d ago` : null;
}

function spanText(seconds) {
  const units = [
    ["d", 86400],
    ["h", 3600],
    ["min", 60],
  ];
  const whole = Math.max(Math.floor(seconds), 0);
  for (let i = 0; i < units.length; i++) {
    const [name, size] = units[i];
    if (whole < size) continue;
    const next = units[i + 1];
    const rest = whole % size;
    const first = `${Math.floor(whole / size)} ${name}`;
    return next && rest >= next[1] ? `${first} ${Math.floor(rest / next[1])} ${next[0]}` : first;
  }
  return "< 1 min";
}

const readerZone = document.querySelector("[data-time-zone]");
if (readerZone) {
  const skew = Date.parse(readerZone.dataset.now) - Date.now();
  let days = null;
  try {
    days = new Intl.DateTimeFormat("en-CA", {
      timeZone: readerZone.dataset.timeZone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
    });
  } catch {
    // A zone this browser does not know: the server's words stay as they were.
  }
  const recount = () => {
    const now = Date.now() + skew;
    const parts = Object.fromEntries(days.formatToParts(new Date(now)).map((part) => [part.type, part.value]));
    const today = `${parts.year}-${parts.month}-${parts.day}`;
    document.querySelectorAll("time[data-ago]").forEach((time) => {
      const iso = time.getAttribute("datetime");
      if (!iso) return;
      const text = agoText(iso, now, today) || `${iso.slice(0, 10)} ${iso.slice(11, 16)}`;
      if (time.textContent !== text) time.textContent = text;
    });
    document.querySelectorAll("[data-open-since]").forEach((age) => {
      const text = `open ${spanText((now - Date.parse(age.dataset.openSince)) / 1000)}`;
      if (age.textContent !== text) age.textContent = text;
    });
  };
  if (days) setInterval(recount, 60_000);
}
