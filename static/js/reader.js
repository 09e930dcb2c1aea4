// The in-place reader (templates/email/_conversation.html): when a conversation opens, it is
// scrolled into view and its heading takes the focus; Close or Esc folds it and gives the focus
// back to its row. The reader's URL is the page's, so Back and Reload open it again, here too.
(function () {
  "use strict";
  var returnTo = null;

  function openReader() {
    return document.querySelector("[data-reader]");
  }

  function focusReader() {
    var reader = openReader();
    if (!reader) return false;
    var heading = reader.querySelector("[tabindex='-1']");
    reader.scrollIntoView({block: "start"});
    if (heading) heading.focus({preventScroll: true});
    return true;
  }

  function settle() {
    if (returnTo) {
      var row = document.getElementById(returnTo);
      returnTo = null;
      if (row) {
        row.focus({preventScroll: true});
        row.scrollIntoView({block: "nearest"});
        return;
      }
    }
    focusReader();
  }

  document.addEventListener("click", function (event) {
    var close = event.target.closest("[data-reader-close]");
    if (close) returnTo = close.closest("[data-reader]").dataset.row;
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    var reader = openReader();
    var inField = event.target.closest && event.target.closest("input, textarea, select, dialog");
    if (!reader || inField) return;
    var close = reader.querySelector("[data-reader-close]");
    if (close) {
      event.preventDefault();
      close.click();
    }
  });

  // Only a swap that opens another conversation or closes one moves the focus (not active
  // search, not paging the list under an open reader).
  var shown = null;
  document.addEventListener("htmx:afterSettle", function () {
    var reader = openReader();
    var id = reader ? reader.id : null;
    if (id !== shown || returnTo) settle();
    shown = id;
  });
  function restored() {
    shown = openReader() ? openReader().id : null;
    focusReader();
  }
  document.addEventListener("htmx:historyRestore", restored);
  document.addEventListener("DOMContentLoaded", restored);
}());
