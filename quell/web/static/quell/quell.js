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
