/* Offline support for the ipywidgets embedder (@jupyter-widgets/html-manager, embed-amd.js).
 *
 * Copied by tools/vendor.sh to _static/jupyter-widgets/offline.js and loaded, on pages that
 * embed widget state, after require.js and before embed-amd.js (_config.yml: nb_ipywidgets_js).
 *
 * 1. The embedder loads its icon fonts relative to the URL require.js gives its AMD modules
 *    ("@jupyter-widgets/html-manager/dist/libembed-amd", ...), by default next to the page,
 *    where there are none. Map those module ids into this folder, where tools/vendor.sh put
 *    the fonts.
 * 2. ipywidgets 8 typesets widget labels with the MathJax 2 call MathJax.Hub.Queue(...), but
 *    the book loads MathJax 3 ("Cannot read properties of undefined (reading 'Queue')"). Provide
 *    that call on top of MathJax 3's typesetPromise. The page's MathJax only knows \(...\)
 *    (MyST turns $...$ into math at build time), so a label's $...$ is rewritten first, as
 *    JupyterLab would show it.
 * 3. The sliders' handles (noUiSlider, role="slider") have no accessible name (axe rule
 *    "aria-input-field-name"): give each the description of its widget, as screen readers need.
 *    The figure an Output widget shows (its state when the book was built) has no alt text:
 *    say what it is.
 */
(function () {
  "use strict";
  var here = new URL(".", document.currentScript.src).href; // .../_static/jupyter-widgets/

  var ids = [
    "@jupyter-widgets/base",
    "@jupyter-widgets/base7",
    "@jupyter-widgets/controls",
    "@jupyter-widgets/controls7",
    "@jupyter-widgets/output",
    "@jupyter-widgets/html-manager",
    "@jupyter-widgets/html-manager/dist/libembed-amd",
  ];
  var paths = {};
  ids.forEach(function (id) {
    paths[id] = here + id.replace(/[@\/]/g, "_");
  });
  window.require.config({ paths: paths });

  function mathjax2Shim() {
    var mj = window.MathJax;
    if (!mj || mj.Hub || !mj.startup) return; // absent, already shimmed, or not MathJax 3
    mj.Hub = {
      Queue: function (job) {
        var element = Array.isArray(job) ? job[2] : undefined;
        if (element && element.childElementCount === 0 && element.textContent.indexOf("$") >= 0) {
          element.textContent = element.textContent
            .replace(/\$\$([^$]+)\$\$/g, "\\[$1\\]")
            .replace(/\$([^$]+)\$/g, "\\($1\\)");
        }
        mj.startup.promise
          .then(function () {
            return mj.typesetPromise(element ? [element] : undefined);
          })
          .catch(function (err) {
            console.warn("MathJax typesetting of a widget failed:", err);
          });
      },
    };
  }
  mathjax2Shim();
  document.addEventListener("DOMContentLoaded", mathjax2Shim);

  function nameSliderHandles(root) {
    root.querySelectorAll(".jupyter-widgets .noUi-handle:not([aria-label])").forEach(function (h) {
      var box = h.closest(".widget-slider") || h.closest(".jupyter-widgets");
      var label = box && box.querySelector(".widget-label");
      var name = label && (label.getAttribute("title") || label.textContent || "").trim();
      h.setAttribute("aria-label", name || "slider");
    });
    root.querySelectorAll(".jupyter-widgets img:not([alt])").forEach(function (img) {
      img.setAttribute("alt", "The widget's figure at its initial settings, as computed when " +
        "the book was built. Run the chapter in Jupyter to change the settings.");
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    nameSliderHandles(document);
    new MutationObserver(function () {
      nameSliderHandles(document);
    }).observe(document.body, { childList: true, subtree: true });
  });
})();
