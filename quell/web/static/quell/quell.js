// The little behaviour Quell's pages need beyond htmx: opening dialogs from menus, closing menus, and
// filters that apply on change.
"use strict";

function openDialog(id, opener) {
  const dialog = document.getElementById(id);
  if (!dialog || typeof dialog.showModal !== "function") return false;
  const menu = opener.closest("details");
  if (menu) menu.removeAttribute("open");
  dialog.showModal();
  const first = dialog.querySelector("input:not([type=hidden]), select, textarea");
  if (first) first.focus();
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
