// Operations pages: filters that apply as soon as a choice is made (the forms still work
// without JavaScript through their "Show" button).
(function () {
  "use strict";
  document.addEventListener("change", function (evt) {
    var select = evt.target;
    if (select && select.classList && select.classList.contains("auto-submit") && select.form) {
      select.form.submit();
    }
  });
})();
