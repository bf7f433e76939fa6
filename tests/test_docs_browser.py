"""The built documentation site, opened page by page in headless Chromium.

Builds the site with `mkdocs build --strict` into a temporary folder, serves it on
localhost and opens every page in Debian's `chromium` (driven by Playwright), checking that
the page logs no console error, that every formula was typeset by the bundled MathJax (no
raw `$$` or `\\(` left in the text) and is visible (nonzero width, every character drawn,
no display formula wider than the text column),
that every image loaded, that the doctest examples of the API reference sit in code blocks,
and that no request leaves localhost (the site must work offline).

A full-page screenshot of every page is saved as PNG, so that a reviewer sees what readers
see: into `$SOFTMETRICS_SCREENSHOTS` when set (CI sets `site/_screenshots`), otherwise into
a pytest temporary folder; the folder is printed.

Skips when Chromium, Playwright or mkdocs is missing, unless `SOFTMETRICS_REQUIRE_BROWSER=1`
(set by CI), which turns the skip into a failure. Run with `pytest -m browser`.
"""

from __future__ import annotations

import functools
import html
import http.server
import inspect
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("SOFTMETRICS_CHROMIUM", "/usr/bin/chromium")
# no network: without these Chromium keeps trying to reach Google's hosts
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--no-default-browser-check", "--disable-default-apps",
    "--disable-extensions", "--metrics-recording-only", "--mute-audio",
]


def _skip(reason: str) -> None:
    if os.environ.get("SOFTMETRICS_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " (SOFTMETRICS_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site built with `mkdocs build --strict` into a fresh folder."""
    try:
        import mkdocs  # noqa: F401
    except ImportError:
        _skip("mkdocs is not installed")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.fixture(scope="module")
def server(site: Path):
    """A local HTTP server for the built site; yields its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and \
            shutil.which(CHROMIUM) is None:
        _skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip("the Python package playwright is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    """The folder for the pages' screenshots."""
    folder = os.environ.get("SOFTMETRICS_SCREENSHOTS")
    out = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _pages(site: Path) -> list[str]:
    """Every HTML page of the site, as URL paths relative to its root."""
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    return [p.removesuffix("index.html") for p in pages]


# the typesetting is complete when every arithmatex element holds MathJax's output
_MATH_DONE = """() => {
  const math = document.querySelectorAll('.arithmatex');
  if (math.length === 0) return true;
  if (!(window.MathJax && MathJax.startup && MathJax.startup.document)) return false;
  return Array.from(math).every(e => e.querySelector('mjx-container') !== null);
}"""

# `$...$` left in the prose (outside code) with TeX in it: math arithmatex did not convert
_RAW_INLINE = re.compile(r"\$[^$\n]{0,80}[\\^_][^$\n]{0,80}\$")

_IMAGES_DONE = "() => Array.from(document.images).every(i => i.complete)"

# after the first typesetting: wait for every queued re-typesetting and the web fonts
_SETTLED = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await document.fonts.ready;
}"""

# a formula can be present and still blank: CommonHTML draws each character from a CSS
# rule `mjx-c.mjx-c<code>::before { content: ... }`; without it the formula has no width
_VISIBLE_MATH = """() => {
  const shown = e => e.getClientRects().length > 0 && !e.closest('details:not([open])');
  const containers = Array.from(document.querySelectorAll('mjx-container')).filter(shown);
  const tex = new Map();  // each container's TeX source, to name it in the message
  try {
    for (const m of MathJax.startup.document.math) tex.set(m.typesetRoot, m.math);
  } catch (e) {}
  const around = e => {
    const c = e.closest('mjx-container');
    return (tex.get(c) || c.textContent).slice(0, 60);
  };
  const blank = containers.filter(c => !(c.getBoundingClientRect().width > 0));
  const chars = containers.flatMap(c => Array.from(c.querySelectorAll('mjx-c')));
  const drawn = c => {
    const content = getComputedStyle(c, '::before').content;
    return (content !== 'none' && content !== '' && content !== 'normal') ||
      c.textContent.trim() !== '';
  };
  const undrawn = chars.filter(c => !drawn(c));
  // a display formula wider than its column is cut off (or hidden behind a scroll bar)
  const clipped = containers.filter(c => c.getAttribute('display') === 'true' &&
                                         c.scrollWidth > c.clientWidth + 1);
  return {shown: containers.length, chars: chars.length,
          blank: blank.length, blank_at: blank.slice(0, 3).map(around),
          undrawn: undrawn.length, undrawn_at: undrawn.slice(0, 3).map(around),
          clipped: clipped.length, clipped_at: clipped.slice(0, 3).map(around)};
}"""

_INSPECT = """() => {
  const math = Array.from(document.querySelectorAll('.arithmatex'));
  const clone = document.querySelector('article') || document.body;
  const copy = clone.cloneNode(true);
  copy.querySelectorAll('pre, code, mjx-container, script, style').forEach(e => e.remove());
  return {
    formulas: math.length,
    rendered: math.filter(e => e.querySelector('mjx-container')).length,
    errors: document.querySelectorAll('mjx-merror, .MathJax_Error').length,
    text: copy.innerText,
    images: Array.from(document.images).map(i => ({src: i.currentSrc || i.src,
                                                    width: i.naturalWidth})),
  };
}"""


def test_site_has_pages_math_and_images(site: Path) -> None:
    """The checks below are not vacuous: the site has formulas, images and the renderer."""
    pages = _pages(site)
    assert len(pages) >= 10, pages
    html = {p: (site / p / "index.html" if not p.endswith(".html") else site / p).read_text()
            for p in pages}
    assert sum('class="arithmatex"' in h for h in html.values()) >= 3
    assert sum("<img " in h for h in html.values()) >= 2
    assert (site / "javascripts" / "mathjax" / "tex-chtml.js").is_file()
    assert not any("cdn.jsdelivr" in h or "unpkg.com" in h for h in html.values())


def _nav_files(nav) -> list[str]:
    """The Markdown files named in mkdocs.yml's `nav`, in order."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [f for v in nav.values() for f in _nav_files(v)]
    return [f for item in nav for f in _nav_files(item)]


def test_site_has_only_nav_pages_and_snippets_are_included(site: Path) -> None:
    """Files that pages include (`--8<--`) or that merely hold a table are no pages of their
    own: the site's pages are exactly those of the nav, and an included table is shown on
    the page that includes it."""
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = {f.removesuffix("index.md").removesuffix(".md") + ("/" if f != "index.md" else "")
           for f in _nav_files(config["nav"])}
    pages = set(_pages(site)) - {"404.html"}
    assert pages == nav, (sorted(pages - nav), sorted(nav - pages))
    includes = 0
    for md in (ROOT / "docs").rglob("*.md"):
        for snippet in re.findall(r'^ *--8<-- "([^"]+)"', md.read_text(), flags=re.M):
            includes += 1
            page = md.relative_to(ROOT / "docs").as_posix().removesuffix(".md") + "/"
            built = (site / page / "index.html").read_text()
            assert "--8<--" not in built, page
            path, _, section = snippet.partition(":")
            if path.endswith(".md"):  # a table
                header = next(line for line in (ROOT / path).read_text().splitlines()
                              if line.startswith("|"))
                first_cell = header.strip("|").split("|")[0].strip()
                assert f"<th>{first_cell}</th>" in built or \
                    f">{first_cell}</th>" in built, (page, snippet, first_cell)
            else:  # code, whole or a `# --8<-- [start:section]` part: its first line
                first = _first_line((ROOT / path).read_text(), section)
                text = html.unescape(re.sub(r"<[^>]+>", "", built))
                assert first in text, (page, snippet, first)
    assert includes >= 3, includes


def _first_line(source: str, section: str) -> str:
    """The first line of `source`, or of its part after `# --8<-- [start:section]`, that
    is neither blank nor a comment nor a docstring's opening line."""
    lines = source.splitlines()
    if section:
        lines = lines[lines.index(next(line for line in lines
                                       if line.strip() == f"# --8<-- [start:{section}]")):]
    return next(line.strip() for line in lines
                if line.strip() and not line.lstrip().startswith(("#", '"""')))


def test_every_page_in_chromium(site: Path, server: str, browser, screenshots: Path,
                                capsys) -> None:
    problems: list[str] = []
    formulas = images = characters = 0
    context = browser.new_context()
    host = urlparse(server).netloc

    def outside(route) -> None:  # the site must not need the network
        problems.append(f"request outside localhost: {route.request.url}")
        route.abort()

    context.route(lambda url: urlparse(url).netloc not in (host, ""), outside)
    for path in _pages(site):
        page = context.new_page()
        where = "/" + path
        page.on("console", lambda m, w=where: problems.append(f"{w}: console {m.type}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e, w=where: problems.append(f"{w}: uncaught: {e}"))
        page.on("requestfailed", lambda r, w=where: problems.append(
            f"{w}: request failed: {r.url} ({r.failure})"))
        page.on("response", lambda r, w=where: problems.append(
            f"{w}: HTTP {r.status}: {r.url}") if r.status >= 400 else None)
        page.goto(server + path, wait_until="load")
        try:
            page.wait_for_function(_MATH_DONE, timeout=30_000)
            page.wait_for_function(_IMAGES_DONE, timeout=30_000)
            page.evaluate(_SETTLED)
            page.wait_for_load_state("networkidle", timeout=30_000)
        except Exception as exc:  # reported with the page's state below
            problems.append(f"{where}: timed out waiting for math or images: {exc}")
        state = page.evaluate(_INSPECT)
        shown = page.evaluate(_VISIBLE_MATH)
        characters += shown["chars"]
        if shown["blank"]:
            problems.append(f"{where}: {shown['blank']} of {shown['shown']} formulas have no "
                            f"width (blank), e.g. in {shown['blank_at']}")
        if shown["clipped"]:
            problems.append(f"{where}: {shown['clipped']} display formulas are wider than the "
                            f"text column (cut off), e.g. {shown['clipped_at']}")
        if shown["undrawn"]:
            problems.append(f"{where}: {shown['undrawn']} of {shown['chars']} formula "
                            f"characters have no glyph, e.g. in {shown['undrawn_at']}")
        formulas += state["formulas"]
        images += len(state["images"])
        if state["rendered"] != state["formulas"]:
            problems.append(f"{where}: {state['rendered']} of {state['formulas']} formulas "
                            "typeset")
        if state["errors"]:
            problems.append(f"{where}: {state['errors']} TeX errors")
        for raw in ("$$", "\\(", "\\["):
            if raw in state["text"]:
                at = state["text"].index(raw)
                problems.append(f"{where}: raw {raw!r} in the text: "
                                f"{state['text'][max(0, at - 40):at + 40]!r}")
        inline = _RAW_INLINE.search(state["text"])
        if inline:
            problems.append(f"{where}: raw inline math in the text: {inline.group()!r}")
        if "$" in state["text"] and not path.startswith("api/"):  # api/: a test below
            at = state["text"].index("$")
            problems.append(f"{where}: raw `$` in the text: "
                            f"{state['text'][max(0, at - 40):at + 40]!r}")
        for img in state["images"]:
            if img["width"] <= 0:
                problems.append(f"{where}: image did not load: {img['src']}")
        name = path.strip("/").removesuffix(".html").replace("/", "_") or "index"
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
        page.close()
    context.close()
    with capsys.disabled():
        print(f"\nscreenshots of every page: {screenshots}")
    assert not problems, "\n".join(problems)
    assert formulas > 0 and images > 0 and characters > 0, (formulas, images, characters)


# each documented object of the API reference as its own contents show it (its members'
# contents left out): its heading id, whether a code block holds a `>>>` prompt, the block
# quotes outside admonitions, and its prose without code and formulas
_API_OBJECTS = """() => Array.from(document.querySelectorAll('.doc-heading[id]')).map(h => {
  const contents = h.parentElement.querySelector(':scope > .doc-contents');
  if (contents === null) return null;
  const own = sel => Array.from(contents.querySelectorAll(sel))
    .filter(e => e.closest('.doc-contents') === contents);
  const copy = contents.cloneNode(true);
  copy.querySelectorAll('.doc-children, pre, code, .arithmatex, script')
    .forEach(e => e.remove());
  return {id: h.id,
          code: own('pre').some(p => p.textContent.includes('>>>')),
          quotes: own('blockquote').filter(q => !q.closest('details, .admonition')).length,
          bases: own('.doc-class-bases').map(b => b.textContent).join(' '),
          text: copy.textContent};
}).filter(o => o !== null)"""


@pytest.fixture(scope="module")
def api_objects(site: Path, server: str, browser) -> list[dict]:
    """Every object of the API reference as Chromium shows it, with its docstring."""
    objects = []
    page = browser.new_page()
    for path in [p for p in _pages(site) if p.startswith("api/")]:
        page.goto(server + path, wait_until="load")
        for obj in page.evaluate(_API_OBJECTS):
            obj["where"] = f"/{path}#{obj['id']}"
            obj["doc"] = inspect.getdoc(pkgutil.resolve_name(obj["id"])) or ""
            objects.append(obj)
    page.close()
    return objects


def test_api_reference_in_chromium(api_objects: list[dict]) -> None:
    """The checks on the API reference below are not vacuous; no private base is shown."""
    assert len(api_objects) >= 20, [o["id"] for o in api_objects]
    assert sum(">>>" in o["doc"] for o in api_objects) >= 10
    # a reader cannot look up a private base class (`Bases: _TverskyLoss`)
    private = [o["where"] for o in api_objects if re.search(r"(^|\W)_[A-Za-z]", o["bases"])]
    assert not private, private


def test_api_examples_are_code_blocks(api_objects: list[dict]) -> None:
    """A docstring's doctest shows as a code block, not as run-on text in block quotes."""
    problems = [f"{o['where']}: the doctest is not in a code block"
                for o in api_objects if ">>>" in o["doc"] and not o["code"]]
    assert not problems, "\n".join(problems)


def test_api_prose_reads_as_written(api_objects: list[dict]) -> None:
    """No Markdown accident in the docstrings' prose: no block quote, no stray `$`."""
    problems = []
    for o in api_objects:
        if o["quotes"]:
            problems.append(f"{o['where']}: {o['quotes']} block quotes")
        if "$" in o["text"]:
            at = o["text"].index("$")
            problems.append(f"{o['where']}: raw `$` in the text: "
                            f"{o['text'][max(0, at - 40):at + 40]!r}")
    assert not problems, "\n".join(problems)
