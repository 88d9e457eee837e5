"""The documentation: built with ``mkdocs build --strict``, complete for every
registered variant, loading nothing from the network, with math that KaTeX accepts,
and rendered in headless Chromium (math typeset, diagrams drawn, a screenshot taken).

The build needs the vendored KaTeX and Mermaid (``bash docs/install_assets.sh``);
the browser test needs Debian's ``chromium`` (skipped without it, except under CI).
"""

from __future__ import annotations

import functools
import html
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from zoo import registry, structure

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
VENDOR = DOCS / "assets" / "vendor"
SECTIONS = ("The paper", "Generative model", "Guide", "Objective", "Traced structure", "Results", "Source", "Train and evaluate")
QUIET = {"NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}  # plugins' banners

sys.path.insert(0, str(DOCS))
from zoodocs import diagram, results, site_pages  # noqa: E402
from zoodocs import markdown as md  # noqa: E402
from zoodocs.variant_page import VariantDocs, images_to_copy, render  # noqa: E402


@dataclass
class Build:
    site: Path
    returncode: int
    log: str

    def page(self, path: str) -> str:
        return (self.site / path).read_text()


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Build:
    """``mkdocs build --strict`` into a temporary folder, once for this module. A build
    that fails strict mode still writes its pages, so the other tests check those."""
    if not (VENDOR / "VERSIONS").is_file():
        pytest.fail("the vendored KaTeX and Mermaid are missing: run `bash docs/install_assets.sh`", pytrace=False)
    # scripts/test.sh names the folder of its strict build (VAEZOO_SITE_DIR), so the
    # site is built once per test command, here.
    site = Path(os.environ["VAEZOO_SITE_DIR"]).resolve() if os.environ.get("VAEZOO_SITE_DIR") else tmp_path_factory.mktemp("site")
    process = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, **QUIET},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Build(site, process.returncode, process.stdout + process.stderr)


class TextOf(HTMLParser):
    """The text a reader sees: without scripts, styles, code, and KaTeX's hidden
    MathML copy (its annotation holds the TeX source)."""

    SKIPPED = {"script", "style", "pre", "code", "annotation", "svg", "textarea"}

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIPPED:
            self.depth += 1

    def handle_endtag(self, tag):
        if tag in self.SKIPPED and self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if not self.depth:
            self.parts.append(data)


def visible_text(page: str) -> str:
    parser = TextOf()
    parser.feed(page)
    return " ".join(parser.parts)


def plain(page: str) -> str:
    """All the text of a page, code included, tags removed."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def h2_headings(page: str) -> list[str]:
    found = re.findall(r"<h2[^>]*>(.*?)</h2>", page, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", h)).replace("¶", "").strip() for h in found]


# ---------------------------------------------------------------------------
# The built site
# ---------------------------------------------------------------------------


def test_docs_build_in_strict_mode(build):
    warnings = [line for line in build.log.splitlines() if "WARNING" in line or "ERROR" in line]
    assert build.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(warnings or build.log.splitlines()[-20:])


@pytest.mark.parametrize("name", registry.names())
def test_every_variant_has_a_page_with_the_same_sections_from_its_card_and_trace(build, name):
    page = build.page(f"variants/{name}/index.html")
    assert h2_headings(page) == list(SECTIONS)
    card = registry.card(name)
    text, everything = visible_text(page), plain(page)
    assert card.paper.url in page and card.paper.title in everything
    for equation in card.equations():  # numbered, anchored at their label
        assert f'id="{equation.label}"' in page
        assert f"({equation.label})" in text
    for hyper in card.hyperparameters:
        assert hyper.name in everything and md.value_repr(hyper.default) in everything
    for site in card.model_sites + card.guide_sites:
        assert f"<code>{site.name}</code>" in page
    # One diagram when both backends trace the same picture, else one per backend.
    signatures = {diagram.signature(traced(name, backend)) for backend in registry.BACKENDS}
    assert page.count('class="vaezoo-diagram"') == len(signatures)
    source = (ROOT / "zoo" / name / "pyro_model.py").read_text()
    first_def = next(line.strip() for line in source.splitlines() if line.strip().startswith("def "))
    assert first_def in everything, "the Pyro source is not included"
    assert f"vaezoo train {name} --backend numpyro" in everything


traced = functools.lru_cache(maxsize=None)(structure.trace)


@pytest.mark.parametrize("name", registry.names())
def test_both_backends_trace_the_same_graphical_model(name):
    """The page draws one diagram for both backends; that is only right when their
    traced sites, plates and dependencies agree."""
    pyro, numpyro = (diagram.signature(traced(name, backend)) for backend in registry.BACKENDS)
    assert pyro == numpyro


def test_index_is_the_zoo_table_with_a_row_per_variant(build):
    page = build.page("index.html")
    table = page[page.index("<table"):page.index("</table>")]
    header = [html.unescape(re.sub(r"<[^>]+>", "", h)).strip() for h in re.findall(r"<th[^>]*>(.*?)</th>", table, re.S)]
    assert header == ["Variant", "Paper", "Year", "Objective", "Pyro", "NumPyro", "The zoo evaluates", "Result of a short run"]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]
    assert [re.search(r'href="variants/([^/"]+)/"', row).group(1) for row in rows] == registry.names()
    for row, name in zip(rows, registry.names()):
        card = registry.card(name)
        assert card.paper.url in row and f"<td>{card.paper.year}</td>" in row
        assert "no run yet" not in row, f"{name}: no published run (python scripts/make_results.py {name})"


def test_getting_started_shows_the_readme_commands(build):
    readme = ROOT / "README.md"
    if not readme.is_file():
        pytest.skip("no README.md yet")
    commands = site_pages.readme_commands(readme.read_text())
    assert commands, "README.md has no fenced block with install/train/test commands"
    page = plain(build.page("getting-started/index.html"))
    for block in commands:
        for line in block.splitlines():
            assert line.strip() in page, f"README command missing from Getting started: {line!r}"


def test_concepts_benchmarks_and_api_reference_are_built(build):
    concepts = visible_text(build.page("concepts/index.html"))
    for heading in ("The evidence lower bound", "The importance-weighted bound", "Maximum mean discrepancy",
                    "Fisher information", "Support vector data description", "Adversarial terms", "Which variant uses what"):
        assert heading in concepts
    assert "Benchmarks" in build.page("benchmarks/index.html")
    reference = build.page("reference/zoo/structure/index.html")
    assert "site_drift" in reference and "compare_sites" in reference  # mkdocstrings rendered the module


EXTERNAL = re.compile(r"""<(script|link|img|iframe|source|embed)\b(?![^>]*rel="canonical")[^>]*?\b(?:src|href)=["']((?:https?:)?//[^"']+)""", re.I)


def test_pages_load_nothing_from_other_hosts(build):
    """No script, stylesheet, font, image or frame comes from the network (links a
    reader may follow, <a href>, are fine). Material's Google Fonts are off."""
    offending = []
    for page in build.site.rglob("*.html"):
        for tag, url in EXTERNAL.findall(page.read_text()):
            offending.append(f"{page.relative_to(build.site)}: <{tag}> {url}")
    for sheet in build.site.rglob("*.css"):
        for url in re.findall(r"""(?:url\(|@import\s+)["']?((?:https?:)?//[^"')\s]+)""", sheet.read_text()):
            offending.append(f"{sheet.relative_to(build.site)}: {url}")
    assert not offending, "\n".join(offending)
    vendored = ["assets/vendor/katex/katex.min.js", "assets/vendor/katex/katex.min.css", "assets/vendor/mermaid/mermaid.min.js"]
    assert all((build.site / path).is_file() for path in vendored)
    assert any((build.site / "assets/vendor/katex/fonts").glob("*.woff2"))


ARITHMATEX = re.compile(r'<(div|span) class="arithmatex">(.*?)</\1>', re.S)


def test_every_formula_of_the_site_is_valid_katex(build, tmp_path):
    """Every formula on every page, typeset by the vendored KaTeX under node with
    ``throwOnError``: a card whose LaTeX KaTeX cannot read fails here."""
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not installed")
    formulas = []
    for page in sorted(build.site.rglob("*.html")):
        for tag, body in ARITHMATEX.findall(page.read_text()):
            tex = html.unescape(body).strip()
            formulas.append({"page": str(page.relative_to(build.site)), "tex": tex[2:-2], "display": tag == "div"})
    assert len(formulas) > 50
    script = tmp_path / "check.js"
    script.write_text(
        "const katex = require(process.argv[2]);\n"
        "const formulas = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n"
        "const errors = [];\n"
        "for (const f of formulas) {\n"
        "  try { katex.renderToString(f.tex, {displayMode: f.display, throwOnError: true, strict: 'ignore'}); }\n"
        "  catch (e) { errors.push(f.page + ': ' + e.message); }\n"
        "}\n"
        "console.log(JSON.stringify(errors));\n"
    )
    out = subprocess.run(
        [node, str(script), str(VENDOR / "katex" / "katex.min.js")],
        input=json.dumps(formulas), capture_output=True, text=True, timeout=60, check=True,
    )
    errors = json.loads(out.stdout)
    assert not errors, "\n".join(errors)


# ---------------------------------------------------------------------------
# Headless Chromium
# ---------------------------------------------------------------------------


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(build):
    """The site over HTTP on the loopback interface (as `mkdocs serve` would)."""
    handler = functools.partial(QuietHandler, directory=str(build.site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (apt-get install chromium)", pytrace=False)
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


@pytest.mark.browser
def test_a_variant_page_renders_its_math_and_diagrams_in_headless_chromium(served, tmp_path):
    screenshot = tmp_path / "vae.png"
    command = [
        chromium(),
        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        # Every host but this machine's loopback fails to resolve: the page must
        # render from the site alone.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--hide-scrollbars", "--window-size=1280,3000",
        "--virtual-time-budget=20000",  # let KaTeX and Mermaid finish before the dump
        f"--screenshot={screenshot}", "--dump-dom",
        f"{served}/variants/vae/",
    ]
    process = subprocess.run(command, capture_output=True, text=True, timeout=120)
    dom = process.stdout
    assert "<body" in dom, process.stderr[-2000:]

    formulas = dom.count('class="arithmatex"')
    assert formulas >= len(registry.card("vae").equations())
    assert dom.count('data-typeset="true"') == formulas, "some formulas were not typeset"
    assert dom.count('class="katex"') >= formulas
    assert "katex-error" not in dom
    text = visible_text(dom)
    for raw in ("$$", "\\(", "\\)", "\\[", "\\]"):
        assert raw not in text, f"untypeset math left in the page: {raw!r}"

    assert 'data-diagrams="rendered"' in dom, "Mermaid did not finish"
    starts = [m.end() for m in re.finditer(r'<div class="vaezoo-diagram"[^>]*>', dom)]
    assert len(starts) == 1  # the backends agree, so one diagram stands for both
    for start in starts:
        svg = dom[start:dom.index("</svg>", start)]
        assert svg.lstrip().startswith("<svg") and 'aria-roledescription="error"' not in svg
        assert len(re.findall(r'<g class="node default[^"]*" id="[^"]*n\d_\d', svg)) == 3  # model z, x; guide z
        assert "-L_n0_0_n0_1_" in svg  # the arrow z -> x of the model
        assert "plate data (N)" in svg and "model p" in svg and "guide q" in svg
        assert re.search(r'<g class="node default[^"]*" id="[^"]*i1_0', svg), "the guide's input x is drawn"

    from PIL import Image

    assert screenshot.is_file()
    with Image.open(screenshot) as image:
        assert image.size == (1280, 3000)
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or ()) > 50  # not a blank page


HARNESS = """<!doctype html><html><body><pre id="out">running</pre><img src="/wait" alt=""><script>
const pages = %s;
function wait(ms) { return new Promise(r => setTimeout(r, ms)); }
async function check(url) {
  const frame = document.createElement("iframe");
  frame.style.width = "1280px"; frame.style.height = "3000px";
  const loaded = new Promise(r => frame.onload = r);
  frame.src = url; document.body.appendChild(frame);
  await loaded;
  const doc = frame.contentDocument;
  for (let i = 0; i < 300 && !["rendered", "failed"].includes(doc.body.dataset.diagrams); i++) await wait(100);
  const images = Array.from(doc.querySelectorAll("img.vaezoo-result"));
  for (const img of images) { img.loading = "eager"; try { await img.decode(); } catch (e) {} }
  const svgs = Array.from(doc.querySelectorAll(".vaezoo-diagram svg"));
  const main = doc.querySelector("article") || doc.body;
  const clone = main.cloneNode(true);
  clone.querySelectorAll("script, style, pre, code, annotation, svg").forEach(e => e.remove());
  const result = {
    url: url,
    diagrams: doc.body.dataset.diagrams || "none",
    formulas: doc.querySelectorAll(".arithmatex").length,
    typeset: doc.querySelectorAll('.arithmatex[data-typeset="true"]').length,
    katexErrors: doc.querySelectorAll(".katex-error").length,
    svgCount: svgs.length,
    svgErrors: svgs.filter(s => s.getAttribute("aria-roledescription") === "error").length,
    nodeLabels: svgs.flatMap(s => Array.from(s.querySelectorAll("g.node")).map(n => n.textContent.trim())),
    images: images.map(i => [i.getAttribute("src"), i.naturalWidth]),
    textSamples: Array.from(doc.querySelectorAll("pre.vaezoo-samples")).map(e => e.textContent.trim()).filter(t => t),
    text: clone.textContent,
    links: Array.from(doc.querySelectorAll("a[href], img[src], link[href], script[src]"))
      .map(e => e.href || e.src).filter(u => u && u.startsWith(location.origin)),
  };
  frame.remove();
  return result;
}
(async () => {
  const results = [];
  for (const page of pages) results.push(await check(page));
  document.getElementById("out").textContent = JSON.stringify(results);
  await fetch("/results", {method: "POST", body: JSON.stringify(results)});
})().catch(e => fetch("/results", {method: "POST", body: JSON.stringify({error: String(e)})}));
</script></body></html>"""


@pytest.mark.browser
def test_every_variant_page_renders_math_diagram_and_results_in_headless_chromium(build, tmp_path):
    """All variant pages at once, in frames of one harness page (one browser start):
    math typeset, the diagram drawn with every site of the card, a results picture
    loaded, no raw TeX, and every link and picture inside the site."""
    names = registry.names()
    harness = build.site / "harness.html"
    harness.write_text(HARNESS % json.dumps([f"variants/{n}/" for n in names]))
    posted: dict = {}
    done = threading.Event()

    class Harness(QuietHandler):
        # The harness posts its findings to /results; its <img src="/wait"> holds the
        # page's load event (and so chromium's --dump-dom) until then. No virtual time:
        # the theme's timers use it up long before twenty pages are checked.
        def do_POST(self):
            posted["body"] = self.rfile.read(int(self.headers["Content-Length"]))
            done.set()
            self.send_response(204)
            self.end_headers()

        def do_GET(self):
            if self.path != "/wait":
                return super().do_GET()
            done.wait(timeout=30 + 15 * len(names))
            self.send_response(204)
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Harness, directory=str(build.site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        command = [
            chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--dump-dom", f"{origin}/harness.html",
        ]
        process = subprocess.run(command, capture_output=True, text=True, timeout=60 + 15 * len(names))
    finally:
        server.shutdown()
        server.server_close()
        harness.unlink()  # not a page of the site
    assert "body" in posted, process.stderr[-2000:]
    pages = json.loads(posted["body"])
    assert isinstance(pages, list), pages
    assert [p["url"] for p in pages] == [f"variants/{n}/" for n in names]
    problems = []
    for name, page in zip(names, pages):
        card = registry.card(name)
        if page["formulas"] < len(card.equations()) or page["typeset"] != page["formulas"] or page["katexErrors"]:
            problems.append(f"{name}: {page['typeset']}/{page['formulas']} formulas typeset, {page['katexErrors']} KaTeX errors")
        if page["diagrams"] != "rendered" or page["svgCount"] < 1 or page["svgErrors"]:
            problems.append(f"{name}: diagram {page['diagrams']}, {page['svgCount']} drawn, {page['svgErrors']} errors")
        labels = set(page["nodeLabels"])
        missing = [s.name for s in (*card.model_sites, *card.guide_sites, *card.derived) if s.name not in labels]
        if missing:
            problems.append(f"{name}: the diagram lacks the card's sites {missing}")
        if not any(width > 0 for _, width in page["images"]) and not page["textSamples"]:
            problems.append(f"{name}: no results picture loaded ({page['images']}) and no text samples")
        for raw in ("$$", "\\(", "\\[", "VARIANTS.md", "[recalled]", "[unconfirmed]"):
            if raw in page["text"]:
                problems.append(f"{name}: {raw!r} in the page's text")
        for link in page["links"]:
            path = link.removeprefix(origin).split("#")[0].split("?")[0].lstrip("/")
            target = build.site / path
            if not (target.is_file() or (target / "index.html").is_file()):
                problems.append(f"{name}: links to {path}, which is not in the site")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------
# The generator, piece by piece
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vae_pyro():
    return structure.trace("vae", "pyro")


def test_the_diagram_draws_the_traced_sites_plates_and_relations(vae_pyro):
    source = diagram.mermaid([("model p", vae_pyro.model), ("guide q", vae_pyro.guide)])
    lines = [line.strip() for line in source.splitlines()]
    assert lines[0] == "flowchart LR"
    assert 'n0_0(("z"))' in lines and 'n0_1((("x")))' in lines and 'n1_0(("z"))' in lines
    assert "n0_0 --> n0_1" in lines  # x depends on z in the model
    assert sum(line.startswith("subgraph p") for line in lines) == 2  # one data plate each
    assert "class n0_1 observed" in lines and "class n0_0,n1_0 latent" in lines
    assert diagram.edges(vae_pyro.model) == [("z", "x")] and diagram.edges(vae_pyro.guide) == []


def test_nested_plates_and_factors_are_drawn_nested_and_as_hexagons():
    def program():
        import pyro
        import pyro.distributions as dist
        import torch

        with pyro.plate("groups", 2, dim=-2):
            with pyro.plate("data", 3, dim=-1):
                z = pyro.sample("z", dist.Normal(0.0, 1.0))
                pyro.sample("x", dist.Normal(z, 1.0), obs=torch.zeros(2, 3))
        pyro.factor("penalty", -(z**2).sum())

    from pyro.infer.inspect import get_model_relations

    part = structure.ProgramStructure("model", structure.pyro_sites(program, {}), get_model_relations(program))
    lines = [line.strip() for line in diagram.mermaid([("model", part)]).splitlines()]
    start = lines.index('subgraph p0["plate groups (2)"]')
    assert lines[start + 1] == 'subgraph p1["plate data (3)"]' and lines[start + 2:start + 4] == ['n0_0(("z"))', 'n0_1((("x")))']
    assert 'n0_2{{"penalty"}}' in lines and "n0_0 --> n0_2" in lines and "class n0_2 factor" in lines


def test_card_text_is_escaped_outside_math_and_kept_inside():
    assert md.text("z = mu + sigma * eps, the [0, 1] range of x_i") == r"z = mu + sigma \* eps, the \[0, 1\] range of x\_i"
    # A "<" in prose is an entity: Markdown would otherwise open an HTML tag at "z_<t".
    assert md.text("z_t does not condition on z_<t") == r"z\_t does not condition on z\_&lt;t"
    assert md.text(r"weight $\lambda_z$ of |J|", in_table=True) == r"weight $\lambda_z$ of \|J\|"
    assert md.text(r"$p(x \mid z) = |a|$", in_table=True) == r"$p(x \mid z) = \vert a\vert $"
    cited = md.text("the prior (vae.1), not (vae.9)", labels={"vae.1": "#vae.1"})
    assert cited == "the prior [(vae.1)](#vae.1), not (vae.9)"
    equation = md.display_equation("a < b\n\n+ c", "vae.1")
    assert equation == (
        '<div class="vaezoo-equation" id="vae.1"><div class="vaezoo-formula">'
        '<span class="arithmatex">\\(\\displaystyle a &lt; b + c\\)</span></div>'
        '<span class="vaezoo-equation-label">(vae.1)</span></div>'
    )


def write_run(folder: Path, variant: str, backend: str, **metrics) -> Path:
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"variant": variant, "backend": backend, "dataset": "digits", **metrics}))
    (folder / "samples.png").write_bytes(b"\x89PNG fake")
    return folder


def test_a_variant_page_shows_its_drift_and_its_latest_run(tmp_path, vae_pyro):
    write_run(tmp_path / "runs" / "vae-pyro-digits", "vae", "pyro", epochs=3, test_elbo_500=-31.25)
    (tmp_path / "runs" / "vae-pyro-digits" / "eval.json").write_text(json.dumps({"test_nll": 30.5, "k": 5000}))
    write_run(tmp_path / "runs" / "vaegan-pyro-digits", "vaegan", "pyro", epochs=9)  # not a vae run
    runs = results.latest_runs(tmp_path, "vae")
    assert list(runs) == ["pyro"] and runs["pyro"].headline() == "test NLL 30.50 (pyro, digits)"

    docs = VariantDocs("vae", registry.card("vae"), {"pyro": vae_pyro}, errors={"numpyro": "vae (numpyro): boom"},
                       problems=["pyro: model: the card declares ['w']"], runs=runs)
    page = render(docs, ROOT)
    assert '!!! danger "Card and code disagree"' in page and "boom" in page
    assert "| epochs trained | 3 |" in page and "| test ELBO (500 test images, nats) | -31.2500 |" in page
    assert "![samples (Pyro)](vae/pyro-samples.png)" in page
    assert images_to_copy(docs) == {"variants/vae/pyro-samples.png": tmp_path / "runs/vae-pyro-digits/samples.png"}
    row = next(line for line in site_pages.index([docs]).splitlines() if line.startswith("| [vae]"))
    assert "| ✗ (drift) | ✗ (fails) |" in row and "test NLL 30.50 (pyro, digits)" in row


def test_benchmark_results_become_tables_and_plots_without_machine_paths(tmp_path):
    from zoodocs import benchmarks_page

    folder = tmp_path / "benchmarks" / "results"
    folder.mkdir(parents=True)
    (tmp_path / "benchmarks" / "throughput.py").write_text('"""Seconds per epoch against plain PyTorch."""\n')
    (tmp_path / "benchmarks" / "README.md").write_text("# Benchmarks\n\n## Throughput\n\nMeasured in words.\n")
    (folder / "throughput.json").write_text(json.dumps({
        "benchmark": "throughput", "batch_size": 256, "data_dir": "/usr/share/datasets/fashion-mnist",
        "machine": {"cpu_count": 2, "platform": "Linux-6.1-x86_64-secret-build"},
        "results": {"torch": {"median_seconds": 1.5, "epoch_seconds": [1.0] * 20},
                    "zoo-pyro": {"median_seconds": 2.25, "vs_torch": 1.5, "epoch_seconds": [2.0] * 20}},
    }))
    page, problems, published = benchmarks_page.benchmarks(tmp_path)
    assert problems == []
    assert "| `benchmark` | throughput |" in page and "| `cpu_count` | 2 |" in page
    # The README opens the page, its headings under the page's own.
    assert "### Throughput" in page and "Measured in words." in page
    assert "From `benchmarks/throughput.py`: Seconds per epoch against plain PyTorch." in page
    # One row per contender; the per-epoch arrays are a plot, not a column.
    assert "|  | `median_seconds` | `vs_torch` |" in page
    assert "| `zoo-pyro` | 2.2500 | 1.5000 |" in page and "| `torch` | 1.5000 |  |" in page
    assert "epoch_seconds" not in page.split("![")[0].split("### throughput")[-1].split("\n|")[1]
    plots = [path for path in published if path.endswith(".png")]
    assert len(plots) == 1 and published[plots[0]].startswith(b"\x89PNG")
    assert "benchmarks/results/throughput.json" in published and "[Download `throughput.json`](benchmarks/results/throughput.json)" in page
    # No machine paths or kernel builds.
    assert "/usr/share" not in page and "secret-build" not in page and "fashion-mnist" in page
    (folder / "broken.json").write_text("{")
    assert benchmarks_page.benchmarks(tmp_path)[1][0].startswith("benchmarks/results/broken.json is not valid JSON")


def test_long_formulas_are_broken_between_formulas_and_at_a_sum_never_inside_brackets():
    short = r"p(z) = \mathcal N(z;\ 0, I)"
    assert md.break_lines(short) == short
    pair = r"p(y) = \mathrm{Cat}(y;\ \tfrac1C \mathbf 1)," + r"\qquad q_\phi(z \mid x) = \mathcal N\big(z;\ \mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x)\big)" * 2
    rows = md.break_lines(pair).removeprefix(r"\begin{aligned}").removesuffix(r"\end{aligned}").split(r" \\ ")
    assert rows[0] == r"&p(y) = \mathrm{Cat}(y;\ \tfrac1C \mathbf 1)," and len(rows) >= 2
    long_sum = r"\mathcal L = " + " + ".join([r"\mathrm{KL}\big(q_\phi(z\mid x)\,\|\,p(z + w)\big)"] * 4)
    broken = md.break_lines(long_sum)
    assert r" \\ &\qquad + " in broken
    assert "p(z \\\\" not in broken and "(z + w)" in broken  # the "+" inside p(z + w) is never a break


def test_derived_nodes_of_a_card_are_drawn_with_their_parents():
    """adVAE's transformer T and its code z_T are no sample sites; the card declares them
    and the guide's diagram draws them, computed from x."""
    advae = structure.trace("advae", "pyro")
    source = diagram.mermaid([("model", advae.model), ("guide", advae.guide)], registry.card("advae").derived)
    lines = [line.strip() for line in source.splitlines()]
    assert 'd1_0(["T"])' in lines and 'd1_1(["z_T"])' in lines and "i1_0 -.-> d1_0" in lines and "d1_0 -.-> d1_1" in lines
    assert not any(line.startswith("d0_") for line in lines)  # nothing derived in the model
