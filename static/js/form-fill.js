/* Add POP3 Account and Send Mail As fill in what a provider look-up suggests here, in the browser,
   when the answer arrives, and only into fields still empty that the user is not in and has not
   typed in: a refresh never replaces the field being typed in nor overwrites a typed value (the
   server swaps only the region that changes). Choosing a security sets its usual port, unless the
   port is one the user chose. */
(function () {
  "use strict";

  function untouched(field) {
    return field && field !== document.activeElement && field.dataset.typed !== "1";
  }

  function apply(region) {
    var fill;
    try {
      fill = JSON.parse(region.dataset.fill);
    } catch (e) {
      return;
    }
    var host = document.getElementById("host");
    if (fill.server && host && host.value === "" && untouched(host)) {
      Object.keys(fill.server).forEach(function (id) {
        var field = document.getElementById(id);
        if (field && (id === "host" || untouched(field))) field.value = fill.server[id];
      });
    }
    Object.keys(fill.empty || {}).forEach(function (id) {
      var field = document.getElementById(id);
      if (field && field.value === "" && untouched(field)) field.value = fill.empty[id];
    });
  }

  document.addEventListener("input", function (event) {
    if (event.isTrusted && event.target.matches && event.target.matches("input")) event.target.dataset.typed = "1";
  });

  document.addEventListener("htmx:load", function (event) {
    var root = event.target;
    if (!root.querySelectorAll) return;
    if (root.matches("[data-fill]")) apply(root);
    root.querySelectorAll("[data-fill]").forEach(apply);
  });

  document.addEventListener("change", function (event) {
    var select = event.target;
    if (!select.matches || !select.matches("select[data-ports]")) return;
    var ports = JSON.parse(select.dataset.ports);
    var port = document.getElementById("port");
    if (!port || !(select.value in ports)) return;
    var usual = Object.keys(ports).map(function (k) { return String(ports[k]); });
    if (port.value === "" || usual.indexOf(port.value) !== -1) port.value = ports[select.value];
  });
})();
