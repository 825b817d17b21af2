// Progressive enhancement only: every form works without this file.
// - rows of a list (targets, results, samples) are added and removed in place;
// - a submitted form's buttons are disabled, so a double click sends once (the form's
//   Idempotency-Key applies it once even if two requests get through).
(function () {
  "use strict";

  function renumber(fieldset) {
    fieldset.querySelectorAll("tbody tr").forEach(function (row, index) {
      row.dataset.row = String(index);
    });
  }

  function nextIndex(fieldset) {
    var highest = -1;
    fieldset.querySelectorAll("tbody tr").forEach(function (row) {
      row.querySelectorAll("[name]").forEach(function (input) {
        var found = /\[(\d+)\]\./.exec(input.name);
        if (found) highest = Math.max(highest, Number(found[1]));
      });
    });
    return highest + 1;
  }

  function enhanceRows(fieldset) {
    var template = fieldset.querySelector("template");
    var body = fieldset.querySelector("tbody");
    var add = fieldset.querySelector("button.add-row");
    if (!template || !body || !add) return;
    fieldset.querySelectorAll("button.remove-row").forEach(function (button) {
      button.hidden = false;
    });
    add.type = "button";
    add.addEventListener("click", function () {
      var index = String(nextIndex(fieldset));
      var html = template.innerHTML.split("__i__").join(index);
      body.insertAdjacentHTML("beforeend", html);
      renumber(fieldset);
      var first = body.lastElementChild && body.lastElementChild.querySelector("input, select");
      if (first) first.focus();
    });
    fieldset.addEventListener("click", function (event) {
      var button = event.target.closest("button.remove-row");
      if (!button) return;
      var row = button.closest("tr");
      if (row) row.remove();
      renumber(fieldset);
      add.focus();
    });
  }

  function guardSubmit(form) {
    form.addEventListener("submit", function () {
      window.setTimeout(function () {
        form.querySelectorAll("button[type=submit]").forEach(function (button) {
          button.disabled = true;
        });
        form.setAttribute("aria-busy", "true");
      }, 0);
    });
  }

  function start() {
    document.querySelectorAll("fieldset[data-rows]").forEach(enhanceRows);
    document.querySelectorAll("form[method=post]").forEach(guardSubmit);
    var summary = document.querySelector(".error-summary");
    if (summary) summary.focus();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
