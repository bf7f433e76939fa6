window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
};
// Material emits document$ once per page view, the first load included; MathJax typesets the
// first page by itself at startup. Re-typesetting is queued on MathJax's startup promise so
// that two typesetting passes never run at once. No `MathJax.startup.output.clearCache()`:
// in MathJax 3.2's CommonHTML output it drops the stylesheet of glyph rules
// (`mjx-c.mjx-c...::before`) without the next pass restoring it, so every formula is
// blank (zero width); the browser test checks that formulas have width and glyphs.
document$.subscribe(() => {
  MathJax.startup.promise = MathJax.startup.promise.then(() => {
    MathJax.typesetClear();
    MathJax.texReset();
    return MathJax.typesetPromise();
  });
});
