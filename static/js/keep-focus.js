// When an htmx swap replaces the element that had the focus (the Test Account or Save button just
// pressed), the focus goes to its counterpart in the new content, so a keyboard user carries on
// from there rather than from the top of the page. htmx does this itself only for elements with
// an id. An autofocus in the new content (the field at fault after a failed test) wins.
(function () {
  "use strict";
  var wanted = null;

  function describe(el) {
    return {tag: el.tagName, name: el.getAttribute("name"), value: el.getAttribute("value"),
            text: el.textContent.trim()};
  }

  function matches(el, d) {
    return el.tagName === d.tag && el.getAttribute("name") === d.name && el.getAttribute("value") === d.value &&
      el.textContent.trim() === d.text;
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    var active = document.activeElement, target = event.detail.target;
    wanted = active && active !== document.body && !active.id && target && target.contains(active)
      ? describe(active) : null;
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var d = wanted, root = event.target;
    wanted = null;
    if (!d || !root.querySelectorAll || (document.activeElement && document.activeElement !== document.body)) return;
    var twin = Array.prototype.find.call(root.querySelectorAll(d.tag), function (el) { return matches(el, d); });
    if (twin) twin.focus({preventScroll: true});
  });
})();
