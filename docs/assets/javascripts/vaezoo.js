/* Typeset math with KaTeX and draw the graphical models with Mermaid, both served by
 * the site itself (docs/assets/vendor, installed by docs/install_assets.sh).
 *
 * Math: pymdownx.arithmatex (generic mode) wraps every formula in an element of class
 * "arithmatex" holding \( ... \) (inline) or \[ ... \] (display); each is rendered in
 * place, so nothing else on the page (code, "$" in names) is ever read as math.
 * Diagrams: ```mermaid fences become <div class="vaezoo-diagram">; Mermaid (5 MB) is
 * loaded only on pages that have one.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var mermaidUrl = new URL("../vendor/mermaid/mermaid.min.js", script.src).href;
  var mermaidReady = null;

  function typesetMath(root) {
    root.querySelectorAll(".arithmatex").forEach(function (element) {
      if (element.dataset.typeset) return;
      var tex = element.textContent.trim();
      var display = element.tagName !== "SPAN";
      if (tex.startsWith("\\(") || tex.startsWith("\\[")) tex = tex.slice(2, -2);
      katex.render(tex, element, { displayMode: display, throwOnError: false });
      element.dataset.typeset = "true";
    });
  }

  function loadMermaid() {
    if (!mermaidReady) {
      mermaidReady = new Promise(function (resolve, reject) {
        var tag = document.createElement("script");
        tag.src = mermaidUrl;
        tag.onload = function () { resolve(window.mermaid); };
        tag.onerror = function () { reject(new Error("cannot load " + mermaidUrl)); };
        document.head.appendChild(tag);
      }).then(function (mermaid) {
        // useMaxWidth false: a wide diagram keeps its real text size and scrolls sideways
        // (scaled to the column, the VFAE diagram's labels shrank to about 9 px).
        mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: "neutral",
                             flowchart: { useMaxWidth: false }, themeVariables: { fontSize: "15px" } });
        return mermaid;
      });
    }
    return mermaidReady;
  }

  function drawDiagrams(root) {
    var nodes = Array.from(root.querySelectorAll(".vaezoo-diagram:not([data-processed])"));
    if (!nodes.length) return Promise.resolve();
    return loadMermaid().then(function (mermaid) {
      return mermaid.run({ nodes: nodes });
    }).then(function () {
      document.body.dataset.diagrams = "rendered";
    });
  }

  function render() {
    typesetMath(document.body);
    drawDiagrams(document.body).catch(function (error) {
      document.body.dataset.diagrams = "failed";
      console.error(error);
    });
  }

  // Material for MkDocs announces every page (also after instant navigation) on document$.
  if (window.document$ && typeof window.document$.subscribe === "function") {
    window.document$.subscribe(render);
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", render);
  } else {
    render();
  }
})();
