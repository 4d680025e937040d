// The print button of the visit summary: a script file, since the pages' Content-Security-Policy
// runs no inline script.
document.addEventListener("click", function (e) {
  if (e.target.closest("[data-print]")) {
    window.print();
  }
});
