"""Render the supplement (``report.qmd``) to HTML, PDF and DOCX, with Quarto or without it.

Two renderers, one source:

* ``quarto`` (when ``quarto`` is on PATH): the manuscript project is copied to a staging folder with
  the notebooks *as executed by helpers.build.execute* (``_output/notebooks/``) in place of the committed,
  output-free ones, and ``quarto render`` turns them into the article. ``_quarto.yml`` disables
  execution, so Quarto only reads the stored outputs.
* ``pandoc+typst`` (the fallback; Quarto cannot be installed on our machines): this module does
  what Quarto would do to the Markdown, then calls pandoc (from pypandoc-binary) and Typst (the
  ``typst`` Python package):

  1. ``{{< include file.qmd >}}`` is replaced by the file's text (paths relative to the including
     file, as in Quarto);
  2. ``{{< embed notebooks/NB.ipynb#LABEL >}}`` becomes the output of the cell labelled ``LABEL`` in
     the executed notebook: a Markdown pipe table gets a pandoc caption ``Table: ... {#tbl-LABEL}``,
     a PNG becomes ``![caption](media/LABEL.png){#fig-LABEL alt=...}``; captions come from the cell's
     ``#| tbl-cap:`` / ``#| fig-cap:`` option, alt text from ``#| fig-alt:``; a table and the text
     under it become a ``.table-block`` with a ``.table-notes`` block; warnings the cell emitted (and
     "Warning (XWarning): ..." lines printed under a table) become one note in words, said once;
  3. ``{{< res a.b.c >}}`` prints the value at that dotted path of ``results.json`` (a path that does
     not exist is an error naming it); ``{{< synthetic-notice >}}`` prints the synthetic-data
     notice when ``data.synthetic`` is true; ``{{< renderer >}}`` names the renderer and the build
     (date, git commit, modified tree);
  4. sections, tables and figures are numbered in document order and ``@sec-x``, ``@tbl-x``,
     ``@fig-x`` (also ``[@fig-x]`` and ``[-@fig-x]``, as in Quarto) become linked "Section 2.1",
     "Table 3", "Figure 2" (pandoc 3.9 has no cross-reference filter);
  5. a ``<`` that cannot open an HTML tag or autolink (``P <0.001``, ``<= 60``) is written ``\\<``:
     the same document for pandoc, parsed several times faster (see :func:`escape_lone_angle_brackets`);
  6. pandoc reads the Markdown once (``--citeproc`` with ``references.bib``) into its JSON document:
     the prose and the table blocks side by side, by two pandoc processes, joined into the document
     pandoc reads from the whole (:func:`read_markdown`); :func:`helpers.build.typeset.protect`
     typesets what every format shares once (no break inside an estimate or a P value, Unicode
     symbols) and :func:`helpers.build.typeset.lay_out` a copy per format (column widths from
     content, landscape pages for wide tables, table notes); pandoc writes standalone HTML
     (:mod:`helpers.build.html_style`: sidebar contents, title block, a link from each output to its
     notebook's own page), DOCX (our A4 reference document and SEQ caption fields,
     :mod:`helpers.build.docx_style`) and Typst (contents, lists of tables and figures, "(continued)"
     headers of long tables) side by side, one thread each, the PDF first;
     ``typst.compile`` turns the Typst into the PDF. Figures are SVG in the PDF and HTML, 300-dpi PNG
     in Word. Each notebook's own HTML page (nbconvert) is made again only when the executed
     notebook changed (:func:`write_notebook_pages`), so a prose-only edit converts none.
  7. what a prose-only edit does not change is kept in the output's ``.cache/`` between renders
     (:class:`TableLayouts`): each table block read, typeset and laid out per format (the prose is
     laid out around placeholders and the tables' stored JSON spliced in), the citations as
     citeproc resolved them while the prose cites the same works, and the prose's sections as pandoc
     read them and wrote them in Typst and HTML (:mod:`helpers.build.chunks`); such a render reads
     only the edited section, writes only its Typst and HTML, and writes the Word file whole. The HTML is made
     self-contained here (:func:`helpers.build.html_style.embed_images`), not by pandoc's
     ``--embed-resources``, which parses the page again. The Word file is finished
     without compressing its figures again (:func:`helpers.build.docx_style.finish_docx`).

Everything is written to a temporary folder inside the output folder (``_output/.render-*``, removed
afterwards) and moved into ``_output/`` only when every requested format has been produced.

The same shortcodes are implemented for Quarto in ``_extensions/res/res.lua``.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import yaml

from helpers.build import chunks
# the schema-free reader, shared with the executor; nbformat itself is imported on first use (a
# prose-only re-render reads notebooks without it)
from helpers.build.execute import nbformat, read_notebook

logger = logging.getLogger(__name__)

REPORT = "report.qmd"
BIBLIOGRAPHY = "references.bib"
EXTENSION_DIR = Path("_extensions") / "res"
NOTICE_FILE = "synthetic-notice.md"
FORMATS = ("html", "pdf", "docx")
RENDERER_QUARTO = "quarto"
RENDERER_FALLBACK = "pandoc+typst"
PANDOC_COLUMNS = 72  # pandoc --columns: line width of the Typst source, and pipe-table widths

SHORTCODE_RE = re.compile(r"\{\{<\s*([A-Za-z][\w-]*)\s*(.*?)\s*>\}\}")
EMBED_TARGET_RE = re.compile(r"^(?P<notebook>[^#\s]+\.ipynb)#(?P<label>[A-Za-z0-9_-]+)$")
LABEL_PREFIXES = {"fig": "Figure", "tbl": "Table", "sec": "Section"}
_LABEL = r"(?:fig|tbl|sec)-[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*"
HEADING_RE = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<text>.*?)(?:\s+\{(?P<attrs>[^}]*)\})?\s*$")
TABLE_CAPTION_RE = re.compile(
    r"^(?P<lead>(?:Table)?:)\s+(?P<caption>.*?)\s*\{#(?P<label>tbl-[A-Za-z0-9_-]+)(?P<rest>[^}]*)\}\s*$")
FIGURE_RE = re.compile(
    r"^!\[(?P<caption>.*)\]\((?P<src>[^)]+)\)\{#(?P<label>fig-[A-Za-z0-9_-]+)(?P<rest>[^}]*)\}\s*$")
WARNING_RE = re.compile(r"(?:^|\s)(?:Warning \((?P<cls2>[A-Z]\w*Warning)\)|(?P<cls>[A-Z]\w*Warning)):\s*(?P<msg>.+)$")

#: Styling of the Typst output: our own numbering replaces Typst's, journal-like tables.
TYPST_HEADER = r"""
#set figure(numbering: none)
#show figure.where(kind: table): set block(breakable: true)
#show figure.where(kind: image): set block(breakable: false)
#show figure.where(kind: table): set figure.caption(position: top)
#show figure.caption: set text(size: 9pt)
#show figure.caption: set align(left)
#show figure.caption: set par(justify: false)
#show figure: set block(above: 1.2em, below: 0.6em)
#show table: set text(size: 8pt)
#show table: set par(justify: false, leading: 0.45em)
#set table(inset: (x: 4pt, y: 2.5pt), align: left,
  stroke: (x, y) => if y == 0 { (top: 0.8pt) })
#show heading: set block(above: 1.4em, below: 0.8em)
#show heading: it => block(sticky: true, it)
#show heading.where(level: 1): it => { place.flush(); it }
#show heading.where(level: 2): it => { place.flush(); it }
#show quote: set block(fill: luma(235), inset: 8pt, radius: 2pt)
#show link: set text(fill: rgb("#1f4e79"))
#show outline.entry.where(level: 1): set block(above: 0.9em)
"""

#: Running header on every PDF page, and a banner kept in view in HTML, when the data are synthetic.
SYNTHETIC_PAGE_MARK = "SYNTHETIC DATA: not patient data and not the study's results"
TYPST_SYNTHETIC_HEADER = ('#set page(header: align(right, text(size: 7.5pt, fill: rgb("#b35900"))['
                          + SYNTHETIC_PAGE_MARK + ']))\n')
HTML_SYNTHETIC_BANNER = ('<div class="synthetic-banner" style="position: sticky; top: 0; z-index: 10; '
                         'background: #fff4e5; color: #b35900; border-bottom: 1px solid #e69500; '
                         'padding: 0.3em 0.8em; font-size: 0.85em;">' + SYNTHETIC_PAGE_MARK + '</div>\n')


class RenderError(RuntimeError):
    """The supplement could not be rendered; the message names the file, label or path at fault."""


class EmbedError(RenderError):
    """An embed points to a notebook, cell label or output that does not exist."""


class UnknownResultError(RenderError, KeyError):
    """A ``{{< res path >}}`` shortcode names a path that results.json does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class RenderInfo:
    """What a render produced: the renderer that ran and the files written to the output folder."""

    renderer: str
    files: tuple[Path, ...]
    detail: str = ""
    #: ``{{< res >}}`` paths shown as MISSING_TEXT (values this cohort's analysis did not produce)
    missing_values: tuple[str, ...] = ()


#: Shown in the prose for a value that this cohort's analysis did not produce (``{{< res X.text.key >}}``
#: with ``X.text`` present but ``key`` absent: a term the model did not select, a level that is not
#: sparse). Any other unknown path (a typo, a notebook that did not run) stops the render.
MISSING_TEXT = "not estimated for this cohort"
#: Set to 1 to stop on such values too (the tests do, on the shipped data).
STRICT_ENV = "SUPPLEMENT_STRICT_RESULTS"


class MissingResultWarning(UserWarning):
    """A prose value is not in results.json for this cohort; MISSING_TEXT is shown instead."""


@dataclass(frozen=True)
class EmbedRef:
    """One ``{{< embed notebook#label >}}`` in the report: where it is written and what it points to."""

    source: Path
    notebook: str
    label: str


# --------------------------------------------------------------------------- notebooks and embeds

def parse_cell_options(source: str) -> dict:
    """Quarto cell options (the leading ``#| key: value`` lines of a code cell) as a dict."""
    lines = []
    for line in source.splitlines():
        if line.startswith("#|"):
            lines.append(line[2:].removeprefix(" "))
        elif line.strip() == "" and not lines:
            continue
        else:
            break
    if not lines:
        return {}
    try:
        options = yaml.safe_load("\n".join(lines)) or {}
    except yaml.YAMLError as exc:
        raise RenderError(f"cell options are not valid YAML: {lines!r}: {exc}") from exc
    return options if isinstance(options, dict) else {}


def notebook_labels(path: Path) -> dict[str, dict]:
    """Labelled code cells of a notebook: ``{label: cell options}``, in notebook order."""
    nb = nbformat.read(str(path), as_version=4)
    labels: dict[str, dict] = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        options = parse_cell_options(cell.source)
        label = options.get("label")
        if label:
            if label in labels:
                raise EmbedError(f"{path.name}: label '{label}' is used by two cells")
            labels[str(label)] = options
    return labels


def _include_path(arg: str, including: Path, root: Path) -> Path:
    arg = arg.strip().strip('"').strip("'")
    return (root / arg.lstrip("/")) if arg.startswith("/") else (including.parent / arg)


def _strip_comments(text: str) -> str:
    """Remove HTML comments, so a commented-out shortcode is neither resolved nor checked."""
    return re.sub(r"<!--.*?-->", "", text, flags=re.S)


def iter_documents(report: Path, root: Path,
                   missing: list[str] | None = None) -> Iterator[tuple[Path, str]]:
    """The report and every file it includes (recursively), with their comment-free text.

    A missing included file raises RenderError, or is appended to ``missing`` when a list is given.
    """
    stack: list[Path] = []

    def visit(path: Path) -> Iterator[tuple[Path, str]]:
        if path in stack:
            raise RenderError(f"include cycle: {' -> '.join(str(p) for p in stack + [path])}")
        if not path.exists():
            where = f" (included from {stack[-1].name})" if stack else ""
            if missing is not None and stack:
                missing.append(f"{path.relative_to(root) if path.is_relative_to(root) else path} "
                               f"does not exist{where}")
                return
            raise RenderError(f"{path} does not exist{where}")
        stack.append(path)
        text = _strip_comments(path.read_text(encoding="utf-8"))
        yield path, text
        for match in SHORTCODE_RE.finditer(text):
            if match.group(1) == "include":
                yield from visit(_include_path(match.group(2), path, root).resolve())
        stack.pop()

    yield from visit(report.resolve())


def find_embeds(project_root: Path, report: str = REPORT,
                missing: list[str] | None = None) -> list[EmbedRef]:
    """Every embed shortcode in the report and its included files, in document order.

    Included files that do not exist raise RenderError, or are listed in ``missing`` if given.
    """
    root = Path(project_root).resolve()
    refs = []
    for path, text in iter_documents(root / report, root, missing):
        for match in SHORTCODE_RE.finditer(text):
            if match.group(1) != "embed":
                continue
            target = match.group(2).split()[0] if match.group(2).split() else ""
            parsed = EMBED_TARGET_RE.match(target)
            if not parsed:
                raise EmbedError(f"{path.name}: embed target '{target}' is not 'notebooks/NB.ipynb#label'")
            refs.append(EmbedRef(path, parsed["notebook"], parsed["label"]))
    return refs


def check_embeds(project_root: Path, report: str = REPORT, excluded: Iterable[str] = (),
                 notebooks_dir: str = "notebooks") -> list[str]:
    """Problems with the embeds, as sentences; an empty list means the report and notebooks agree.

    Checks that every embed points to an existing notebook and an existing cell label, that no label
    is embedded twice, and that every labelled cell of ``notebooks/*.ipynb`` is embedded unless it
    is listed in ``excluded`` (labels deliberately left out of the report).
    """
    root = Path(project_root).resolve()
    problems: list[str] = []
    embeds = find_embeds(root, report, missing=problems)
    labels_by_nb: dict[str, dict] = {}
    for nb_path in sorted((root / notebooks_dir).glob("*.ipynb")):
        labels_by_nb[f"{notebooks_dir}/{nb_path.name}"] = notebook_labels(nb_path)
    seen: set[str] = set()
    for ref in embeds:
        rel = ref.source.relative_to(root) if ref.source.is_relative_to(root) else ref.source
        if not (root / ref.notebook).exists():
            problems.append(f"{rel}: embeds {ref.notebook}#{ref.label} but {ref.notebook} does not exist")
            continue
        labels = labels_by_nb.get(ref.notebook) or notebook_labels(root / ref.notebook)
        if ref.label not in labels:
            problems.append(f"{rel}: embeds {ref.notebook}#{ref.label} but that notebook has no cell "
                            f"labelled '{ref.label}'")
        if ref.label in seen:
            problems.append(f"{rel}: label '{ref.label}' is embedded more than once")
        seen.add(ref.label)
    excluded = set(excluded)
    all_labels: dict[str, str] = {}
    for nb, labels in labels_by_nb.items():
        for label in labels:
            if label in all_labels:
                problems.append(f"label '{label}' is used in both {all_labels[label]} and {nb}")
            all_labels[label] = nb
            if label not in seen and label not in excluded:
                problems.append(f"{nb}#{label} is neither embedded in {report} nor in the exclusion list")
    for label in sorted(excluded - set(all_labels)):
        problems.append(f"exclusion list names '{label}', which no notebook defines")
    return problems


@functools.lru_cache(maxsize=32)
def _code_cells(nb_path: str, mtime_ns: int, size: int) -> tuple:
    """``(cell, options, number)`` of every code cell of a notebook in order, ``options`` being the
    RenderError of invalid options and ``number`` the cell's place among all cells (1-based); read
    once per version of the file (the key holds its modification time and size). The cells are
    shared: do not modify them."""
    nb = read_notebook(nb_path)
    cells = []
    for number, cell in enumerate(nb.cells, 1):
        if cell.cell_type == "code":
            try:
                cells.append((cell, parse_cell_options(cell.source), number))
            except RenderError as exc:
                cells.append((cell, exc, number))
    return tuple(cells)


def code_cells(nb_path: Path) -> tuple:
    """``(cell, options, number)`` of every code cell of a notebook (see :func:`_code_cells`: read once
    per version of the file; ``options`` is a RenderError for options that do not parse; ``number``
    counts all cells from 1; do not modify the cells)."""
    stat = Path(nb_path).stat()
    return _code_cells(str(nb_path), stat.st_mtime_ns, stat.st_size)


def _cell_by_label(nb_path: Path, label: str):
    for cell, options, _ in code_cells(nb_path):
        if isinstance(options, RenderError):
            raise options
        if str(options.get("label", "")) == label:
            return cell, options
    raise EmbedError(f"{nb_path}: no cell labelled '{label}'")


def _as_text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _caveats(cell) -> list[str]:
    """Warning messages a cell emitted (stderr), de-duplicated, in order."""
    notes: list[str] = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            for line in _as_text(output.get("text", "")).splitlines():
                match = WARNING_RE.search(line)
                if match and match["msg"].strip() not in notes:
                    notes.append(match["msg"].strip())
    return notes


def _note_sentence(message: str) -> str:
    """A statistical caveat as a note in words: one sentence, capitalised, with a full stop."""
    text = _one_line(message)
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


#: Folder of the output holding the executed notebooks, and their HTML pages (one per notebook)
NOTEBOOK_PAGES = "notebooks"


def notebook_link_markdown(nb_name: str) -> str:
    """A link from an embedded output to the HTML page of its notebook (kept in the HTML only:
    helpers.build.typeset drops ``.notebook-link`` blocks from the PDF and the Word file)."""
    stem = Path(nb_name).stem
    return f"\n\n::: {{.notebook-link}}\n[Source: notebook {stem}]({NOTEBOOK_PAGES}/{stem}.html)\n:::"


#: Record of the notebook pages in the pages' folder: {page name: :func:`notebook_page_key`}
PAGES_RECORD = ".pages.json"
#: Changes whenever :func:`write_notebook_pages` makes pages differently (invalidates recorded pages)
PAGES_FORMAT = "nbconvert-html-classic-1"
#: The packages that shape a notebook page (their versions are part of its key)
PAGE_PACKAGES = ("nbconvert", "nbformat", "mistune", "pygments", "jinja2", "jupyterlab_pygments", "bleach")


@functools.lru_cache(maxsize=1)
def _page_packages() -> str:
    from importlib import metadata

    versions = []
    for name in PAGE_PACKAGES:
        try:
            versions.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name}=absent")
    return ";".join(versions)


def notebook_page_key(notebook: bytes) -> str:
    """SHA-256 over an executed notebook's bytes, :data:`PAGES_FORMAT` and the versions of the packages
    that make its page (:data:`PAGE_PACKAGES`): equal keys, equal pages."""
    return hashlib.sha256(f"{PAGES_FORMAT}|{_page_packages()}|".encode() + notebook).hexdigest()


def read_pages_record(folder: Path) -> dict[str, str]:
    """The record :data:`PAGES_RECORD` of a folder of notebook pages ({} when absent or unreadable)."""
    try:
        record = json.loads((Path(folder) / PAGES_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in record.items()} if isinstance(record, dict) else {}


def write_notebook_pages(executed_dir: Path, target: Path, build: "BuildInfo",
                         previous: Path | None = None) -> list[Path]:
    """Each executed notebook that ran, as its own HTML page (nbconvert), into ``target``, with the
    record :data:`PAGES_RECORD` of their keys (:func:`notebook_page_key`).

    A page in ``previous`` (the pages of the last render, e.g. ``_output/notebooks``) whose recorded
    key equals its notebook's key is copied instead of converted again: a notebook that was not
    re-executed (a prose-only edit) keeps its page, and nbconvert is not even imported (converting
    the nine notebooks took 3-7 s, the longest step of such a build)."""
    target.mkdir(parents=True, exist_ok=True)
    recorded = read_pages_record(previous) if previous is not None else {}
    exporter = None
    pages, record = [], {}
    for path in sorted(Path(executed_dir).glob("*.ipynb")):
        if not build.ran(path.name):
            continue
        notebook = path.read_bytes()
        key = notebook_page_key(notebook)
        page = target / f"{path.stem}.html"
        old = Path(previous) / page.name if previous is not None else None
        if old is not None and recorded.get(page.name) == key and old.is_file():
            shutil.copyfile(old, page)
        else:
            if exporter is None:
                from nbconvert import HTMLExporter

                exporter = HTMLExporter(template_name="classic")
            body, _ = exporter.from_notebook_node(nbformat.reads(notebook.decode("utf-8"), as_version=4))
            page.write_text(body, encoding="utf-8")
        record[page.name] = key
        pages.append(page)
    (target / PAGES_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return pages


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def embed_markdown(nb_path: Path, label: str, media_dir: Path) -> str:
    """Markdown for the output of cell ``label`` of an executed notebook (see module docstring)."""
    if not nb_path.exists():
        raise EmbedError(f"executed notebook {nb_path} does not exist: execute the notebooks first "
                         f"(make notebooks) before rendering")
    cell, options = _cell_by_label(nb_path, label)
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            raise EmbedError(f"{nb_path.name}#{label}: the cell raised {output.get('ename')}: "
                             f"{output.get('evalue')}")
    bundles = [o.get("data", {}) for o in cell.get("outputs", [])
               if o.get("output_type") in ("display_data", "execute_result")]
    notes = _caveats(cell)
    if label.startswith("tbl-"):
        parts = [_as_text(b["text/markdown"]).strip() for b in bundles if "text/markdown" in b]
        if not parts:
            raise EmbedError(f"{nb_path.name}#{label}: the cell has no Markdown table output")
        caption = _one_line(options.get("tbl-cap", ""))
        lines = "\n\n".join(parts).splitlines()
        first = next((i for i, line in enumerate(lines) if line.lstrip().startswith("|")), None)
        if first is None:
            raise EmbedError(f"{nb_path.name}#{label}: the Markdown output holds no pipe table")
        last = first
        while last + 1 < len(lines) and lines[last + 1].lstrip().startswith("|"):
            last += 1
        before, table, after = lines[:first], lines[first:last + 1], lines[last + 1:]
        after_text = []
        for line in after:   # a warning printed into the Markdown becomes a note, said once
            match = WARNING_RE.match(line.strip())
            if match:
                if match["msg"].strip() not in notes:
                    notes.append(match["msg"].strip())
            else:
                after_text.append(line)
        note_text = "\n".join(after_text).strip()
        note_text += "".join(f"\n\n{_note_sentence(msg)}" for msg in notes)
        block = ["::: {.table-block}", *([*before, ""] if "".join(before).strip() else []),
                 f"Table: {caption} {{#{label}}}", "", *table, ""]
        if note_text.strip():
            block += ["::: {.table-notes}", note_text.strip(), ":::", ""]
        return "\n".join(block + [":::"])
    caveats = "".join(f"\n\n::: {{.table-notes}}\n{_note_sentence(msg)}\n:::" for msg in notes)
    if label.startswith("fig-"):
        png = next((b["image/png"] for b in bundles if "image/png" in b), None)
        svg = next((b["image/svg+xml"] for b in bundles if "image/svg+xml" in b), None)
        if png is None:
            raise EmbedError(f"{nb_path.name}#{label}: the cell has no image/png output (a kernel run "
                             f"with MPLBACKEND=Agg shows figures as text only; use the inline backend, "
                             f"module://matplotlib_inline.backend_inline)")
        media_dir.mkdir(parents=True, exist_ok=True)
        image = media_dir / f"{label}.png"
        image.write_bytes(base64.b64decode(_as_text(png)))
        if svg is not None:     # vector for the PDF and the HTML; Word takes the PNG (typeset.prepare)
            image = media_dir / f"{label}.svg"
            image.write_text(_as_text(svg), encoding="utf-8")
        caption = _one_line(options.get("fig-cap", ""))
        alt = _one_line(options.get("fig-alt", caption)).replace('"', "'")
        return f'![{caption}]({media_dir.name}/{image.name}){{#{label} alt="{alt}"}}' + caveats
    # any other label: its Markdown output, else its plain text
    parts = [_as_text(b.get("text/markdown") or b.get("text/plain", "")).strip() for b in bundles]
    return "\n\n".join(p for p in parts if p) + caveats


# --------------------------------------------------------------------------- parts of the study

#: Names a ``<!-- part: NAME -->`` marker may use: the optional parts of the data, the design, and
#: ``synthetic`` (see helpers.build.pipeline.study_parts)
PART_NAMES = ("pfs", "response", "safety", "exposure", "replication", "randomised", "observational", "synthetic")
PART_OPEN_RE = re.compile(r"^\s*<!--\s*part:\s*(?P<negated>not\s+)?(?P<name>[\w-]+)\s*-->\s*$")
PART_CLOSE_RE = re.compile(r"^\s*<!--\s*/part\s*-->\s*$")
#: What the pipeline records of a build (helpers.build.pipeline.BUILD_NAME)
BUILD_FILE = "build.json"


@dataclass(frozen=True)
class BuildInfo:
    """What the pipeline knows of the build the renderer presents.

    ``parts``: the parts present (None: all, as for a render without a pipeline record);
    ``notebooks``: names of the notebooks executed (None: every notebook); ``title``: the study's title.
    """

    parts: frozenset[str] | None = None
    notebooks: frozenset[str] | None = None
    title: str | None = None

    @classmethod
    def read(cls, output_dir: Path) -> "BuildInfo":
        """The record ``build.json`` of ``output_dir`` (written by the pipeline), else all parts present."""
        try:
            record = json.loads((Path(output_dir) / BUILD_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        return cls(frozenset(record.get("parts") or ()), frozenset(record.get("notebooks") or ()),
                   record.get("title") or None)

    def has(self, part: str) -> bool:
        return self.parts is None or part in self.parts

    def ran(self, notebook: str) -> bool:
        return self.notebooks is None or Path(notebook).name in self.notebooks


_DEFINED_LABEL_RE = re.compile(r"\{#((?:sec|tbl|fig)-[\w-]+)|#((?:tbl|fig)-[A-Za-z0-9_-]+)\s*>\}\}")


def select_parts(text: str, build: BuildInfo, name: str = "", dropped: set[str] | None = None) -> str:
    """``text`` without the blocks marked for parts the study does not have.

    A block runs from a line ``<!-- part: NAME -->`` to its line ``<!-- /part -->`` (blocks nest);
    ``<!-- part: not NAME -->`` keeps its block only when NAME is absent. NAME is one of
    :data:`PART_NAMES`. The marker lines themselves are removed. The section, table and figure labels
    defined or embedded in removed blocks are added to ``dropped``. An unknown name or an unbalanced
    marker is a RenderError naming the file (``name``) and line.
    """
    if "part" not in text:
        return text
    out: list[str] = []
    keep: list[bool] = []
    for number, line in enumerate(text.split("\n"), 1):
        opening = PART_OPEN_RE.match(line)
        if opening:
            part = opening["name"]
            if part not in PART_NAMES:
                raise RenderError(f"{name}, line {number}: unknown part '{part}' "
                                  f"(expected one of {', '.join(PART_NAMES)})")
            keep.append(build.has(part) != bool(opening["negated"]))
            continue
        if PART_CLOSE_RE.match(line):
            if not keep:
                raise RenderError(f"{name}, line {number}: <!-- /part --> closes no part")
            keep.pop()
            continue
        if all(keep):
            out.append(line)
        elif dropped is not None:
            dropped.update(a or b for a, b in _DEFINED_LABEL_RE.findall(line))
            dropped.update(f"include:{m.group(2).strip()}" for m in SHORTCODE_RE.finditer(line)
                           if m.group(1) == "include")
    if keep:
        raise RenderError(f"{name}: {len(keep)} part marker(s) <!-- part: ... --> not closed")
    return "\n".join(out)


def _has_output(nb_path: Path, label: str) -> bool:
    """Whether the cell ``label`` of an executed notebook produced any output (EmbedError if the
    notebook has no such cell)."""
    cell, _ = _cell_by_label(nb_path, label)
    return bool(cell.get("outputs"))


def set_front_matter(text: str, **fields) -> str:
    """``text`` with the given fields set in its YAML front matter (None values leave a field as is)."""
    fields = {k: v for k, v in fields.items() if v is not None}
    front, body = _split_front_matter(text)
    if not fields or not front:
        return text
    meta = yaml.safe_load(front[4:-5]) or {}
    meta.update(fields)
    dumped = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{dumped}---\n{body}"


# --------------------------------------------------------------------------- shortcodes

def _scalar_text(value, path: str) -> str:
    if value is None:
        return "not available"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise UnknownResultError(f"results.json '{path}' is a {type(value).__name__}, not a value to print")
    return str(value)


def lookup_result(results: dict, path: str):
    """The value at a dotted path of results.json; UnknownResultError names the path if absent."""
    from helpers.build.results import get_result

    try:
        return get_result(results, path)
    except KeyError as exc:
        raise UnknownResultError(f"{{{{< res {path} >}}}}: {exc.args[0]}") from None


def synthetic_notice(results: dict, project_root: Path) -> str:
    """The notice Markdown when ``data.synthetic`` is true in results.json, else an empty string."""
    if not (results.get("data") or {}).get("synthetic"):
        return ""
    text = (Path(project_root) / EXTENSION_DIR / NOTICE_FILE).read_text(encoding="utf-8").strip()
    return "\n".join("> " + line if line else ">" for line in text.splitlines())


def _pandoc_path() -> str:
    import pypandoc

    return pypandoc.get_pandoc_path()


@functools.lru_cache(maxsize=1)
def fallback_renderer_line() -> str:
    """One sentence naming the fallback renderer and its versions (for the colophon)."""
    import typst

    version = subprocess.run([_pandoc_path(), "--version"], capture_output=True, text=True,
                             check=True).stdout.split("\n", 1)[0]
    pandoc_version = version.split()[-1] if version.split() else "unknown version"
    return (f"Rendered with pandoc {pandoc_version} (HTML and Word documents) and Typst, through its "
            f"Python package {typst.__version__} (PDF).")


def expand(text: str, path: Path, root: Path, results: dict, media_dir: Path,
           executed_dir: Path, renderer_line: str, stack: tuple[Path, ...] = (),
           build: BuildInfo | None = None, dropped: set[str] | None = None) -> str:
    """Resolve every shortcode of ``text`` (read from ``path``); includes are expanded recursively.

    Blocks of parts the study does not have are removed first (:func:`select_parts`); an embed of a
    notebook that did not run for this study, or of a cell that produced no output, is removed and
    its label added to ``dropped``.
    """
    build = build or BuildInfo()
    dropped = dropped if dropped is not None else set()
    text = _strip_comments(select_parts(text, build, path.name, dropped))
    for entry in [e for e in dropped if e.startswith("include:")]:
        dropped.discard(entry)      # labels of a file whose include was removed count as dropped
        target = _include_path(entry.removeprefix("include:"), path, root)
        if target.exists():
            dropped.update(a or b for a, b in _DEFINED_LABEL_RE.findall(target.read_text(encoding="utf-8")))

    def replace(match: re.Match) -> str:
        name, args = match.group(1), match.group(2)
        if name == "include":
            target = _include_path(args, path, root).resolve()
            if target in stack:
                raise RenderError(f"include cycle at {target}")
            if not target.exists():
                raise RenderError(f"{path.name}: included file {target} does not exist")
            return expand(target.read_text(encoding="utf-8"), target, root, results, media_dir,
                          executed_dir, renderer_line, stack + (target,), build, dropped).strip("\n")
        if name == "embed":
            parsed = EMBED_TARGET_RE.match(args.split()[0] if args.split() else "")
            if not parsed:
                raise EmbedError(f"{path.name}: embed target '{args}' is not 'notebooks/NB.ipynb#label'")
            nb_name = Path(parsed["notebook"]).name
            if not build.ran(nb_name) or ((executed_dir / nb_name).exists()
                                          and not _has_output(executed_dir / nb_name, parsed["label"])):
                dropped.add(parsed["label"])      # not produced for this study
                return ""
            return (embed_markdown(executed_dir / nb_name, parsed["label"], media_dir)
                    + notebook_link_markdown(nb_name))
        if name == "res":
            key = args.strip().strip('"').strip("'")
            try:
                value = lookup_result(results, key)
            except UnknownResultError:
                parent = key.rpartition(".")[0]
                if not parent.endswith(".text") or os.environ.get(STRICT_ENV) == "1":
                    raise
                try:
                    lookup_result(results, parent)       # the section itself must exist
                except UnknownResultError:
                    raise UnknownResultError(f"{{{{< res {key} >}}}}: results.json has no '{parent}'") from None
                warnings.warn(key, MissingResultWarning, stacklevel=2)
                return f"*{MISSING_TEXT}*"
            return _scalar_text(value, key)
        if name == "synthetic-notice":
            return synthetic_notice(results, root)
        if name == "renderer":
            return renderer_line + " " + build_sentence(root)
        if name == "pagebreak":
            return ""
        raise RenderError(f"{path.name}: unknown shortcode '{name}' in {match.group(0)}")

    return SHORTCODE_RE.sub(replace, text)


# --------------------------------------------------------------------------- numbering

def _split_front_matter(text: str) -> tuple[str, str]:
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end != -1:
            return text[: end + 5], text[end + 5:]
    return "", text


_FENCE_RE = re.compile(r"^\s*(`{3,}|~{3,})")


def _outside_code(lines: list[str]) -> Iterator[tuple[int, str]]:
    """The lines (index, text) outside fenced code blocks, fence lines excluded. A fence closes on the
    same character repeated at least as often, alone on its line (a ```` ````markdown ```` block
    may hold ```` ``` ```` lines)."""
    fence: str | None = None
    for i, line in enumerate(lines):
        opening = _FENCE_RE.match(line)
        if fence is None:
            if opening:
                fence = opening.group(1)
                continue
            yield i, line
        elif (opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence)
              and not line[opening.end():].strip()):
            fence = None


#: Shown for a cross-reference to a table or figure that was not produced for this study
NOT_PRODUCED_TEXT = "not produced for these data"


def number_crossrefs(text: str, dropped: Iterable[str] = ()) -> str:
    """Number sections, tables and figures in order and resolve ``@sec-``/``@tbl-``/``@fig-`` refs.

    Sections marked ``{.unnumbered}`` or ``{-}`` keep no number. Captions become "Table 3: ..." and
    "Figure 2: ...". A reference to a label of ``dropped`` (an embed not produced for this study)
    reads :data:`NOT_PRODUCED_TEXT` (with a MissingResultWarning); a reference to any other label
    that is not defined is an error naming it.
    """
    dropped = set(dropped)
    front, body = _split_front_matter(text)
    lines = body.split("\n")
    numbers: dict[str, str] = {}
    counters = {"tbl": 0, "fig": 0}
    sec = [0] * 6
    for i, line in _outside_code(lines):
        heading = HEADING_RE.match(line)
        if heading:
            attrs = heading["attrs"] or ""
            level = len(heading["hashes"])
            if ".unnumbered" in attrs or re.search(r"(^|\s)-($|\s)", attrs):
                continue
            sec[level - 1] += 1
            sec[level:] = [0] * (6 - level)
            number = ".".join(str(n) for n in sec[:level] if n) or "0"
            label = re.search(r"#(sec-[\w-]+)", attrs)
            if label:
                numbers[label.group(1)] = f"Section {number}"
            lines[i] = f"{heading['hashes']} {number} {heading['text']}" + (f" {{{attrs}}}" if attrs else "")
            continue
        table = TABLE_CAPTION_RE.match(line)
        if table:
            counters["tbl"] += 1
            tag = f"Table {counters['tbl']}"
            numbers[table["label"]] = tag
            lines[i] = f"Table: {tag}: {table['caption']} {{#{table['label']}{table['rest']}}}"
            continue
        figure = FIGURE_RE.match(line)
        if figure:
            counters["fig"] += 1
            tag = f"Figure {counters['fig']}"
            numbers[figure["label"]] = tag
            lines[i] = f"![{tag}: {figure['caption']}]({figure['src']}){{#{figure['label']}{figure['rest']}}}"
    body = "\n".join(lines)

    def ref(label: str, bare: bool = False) -> str:
        if label not in numbers and label in dropped:
            warnings.warn(f"@{label}", MissingResultWarning, stacklevel=2)
            return f"*{NOT_PRODUCED_TEXT}*"
        if label not in numbers:
            raise RenderError(f"cross-reference @{label} points to no numbered section, table or figure")
        text = numbers[label].split(" ", 1)[1] if bare else numbers[label]
        return f"[{text}](#{label})"

    body = re.sub(rf"\[-@({_LABEL})\]", lambda m: ref(m.group(1), bare=True), body)
    body = re.sub(rf"\[@({_LABEL})\]", lambda m: ref(m.group(1)), body)
    body = re.sub(rf"(?<![\w@\[])@({_LABEL})", lambda m: ref(m.group(1)), body)
    body = re.sub(rf"(?<![\w@\[])@([FTS])((?:ig|bl|ec)-[A-Za-z0-9_-]*[A-Za-z0-9_])",
                  lambda m: ref(m.group(1).lower() + m.group(2)), body)
    return front + body


def build_markdown(project_root: Path, results: dict, work_dir: Path, executed_dir: Path,
                   renderer_line: str, report: str = REPORT, build: BuildInfo | None = None) -> str:
    """The report as plain pandoc Markdown: parts the study lacks removed, shortcodes resolved,
    cross-references numbered, the study's title set."""
    root = Path(project_root).resolve()
    source = root / report
    if not source.exists():
        raise RenderError(f"{source} does not exist")
    build = build or BuildInfo()
    dropped: set[str] = set()
    text = expand(source.read_text(encoding="utf-8"), source, root, results, work_dir / "media",
                  executed_dir, renderer_line, (source,), build, dropped)
    text = set_front_matter(text, title=report_title(build, results))
    return number_crossrefs(text, dropped)


def report_title(build: BuildInfo, results: dict) -> str | None:
    """The supplement's title: the study's (study.yaml ``title``, recorded by the pipeline or written to
    ``data.text.title``); None keeps the title of report.qmd."""
    text = ((results.get("data") or {}).get("text") or {}).get("title")
    return build.title or (text if isinstance(text, str) and text else None)


# --------------------------------------------------------------------------- pandoc input

#: ``<`` that cannot start a tag, comment, processing instruction or autolink: not followed by a
#: letter, ``/``, ``!`` or ``?``, nor by a run of non-blank characters that reaches a ``>``, and not
#: already escaped.
LONE_ANGLE_RE = re.compile(r"(?<!\\)<(?![A-Za-z/!?])(?![^\s>]*>)")
#: Inline spans whose text pandoc does not parse as Markdown, or parses with other escaping rules:
#: code spans, math, attribute or raw-TeX braces, link destinations. Unclosed ones run to the end.
_PROTECTED_RE = re.compile(r"(?P<ticks>`+).*?(?<!`)(?P=ticks)(?!`)|`+.*|\$\$.*?(?:\$\$|\Z)|\$.*?(?:\$|\Z)"
                           r"|\{.*?(?:\}|\Z)|\]\(.*?(?:\)|\Z)", re.S)
_CITATION_KEY_END_RE = re.compile(r"@[^\s\[\]]+\s?$")
_TABLE_RULE_RE = re.compile(r"^\s*[-=+:|\s]*-[-=+:|\s]*$")
_RAW_CONTENT_TAG_RE = re.compile(r"<(?:pre|script|style|textarea)\b", re.I)
_FENCE_RE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})")


def _escape_block(block: list[str], columns: int) -> list[str]:
    """One blank-line-separated block of Markdown lines, with its lone ``<`` escaped where safe."""
    text = "\n".join(block)
    if "<" not in text:
        return block
    if (block[0].strip() == "---" or re.search(r"<[A-Za-z/!?]", text) or "\\begin" in text
            or any(line.startswith(("    ", "\t")) for line in block)):
        return block  # YAML metadata, raw HTML or TeX, indented code: left as written
    rules = [line for line in block if _TABLE_RULE_RE.match(line)]
    if rules:
        # a table: pandoc gives a pipe table relative column widths when a row is longer than
        # --columns, so a row may only grow if one already is; other table kinds are left alone
        rows = [line.strip() for line in block if line.lstrip().startswith("|") and line not in rules]
        if not all(line.lstrip().startswith("|") for line in block) or max(map(len, rows), default=0) <= columns:
            return block
    protected = bytearray(len(text))
    for match in _PROTECTED_RE.finditer(text):
        protected[match.start():match.end()] = b"\x01" * (match.end() - match.start())
    for start, end in _citation_groups(text):
        protected[start:end] = b"\x01" * (end - start)
    return LONE_ANGLE_RE.sub(lambda m: m.group(0) if protected[m.start()] else "\\<", text).split("\n")


def _citation_groups(text: str) -> Iterator[tuple[int, int]]:
    """Spans of the bracket groups that can be citations: pandoc keeps their source text in the
    document (``[@key, p. <3]``, ``@key [p. <3]``), so a ``<`` in them must stay as written."""
    opened: list[int] = []
    for i, char in enumerate(text):
        if char in "[]" and (i - len(text[:i].rstrip("\\"))) % 2:
            continue  # escaped: an odd number of backslashes before it
        if char == "[":
            opened.append(i)
        elif char == "]" and opened:
            start = opened.pop()
            if "@" in text[start:i] or _CITATION_KEY_END_RE.search(text, 0, start):
                yield start, i + 1


def escape_lone_angle_brackets(markdown: str, columns: int = 72) -> str:
    """``markdown`` with each ``<`` that cannot open HTML or an autolink written as ``\\<``.

    Pandoc (3.9) tries every ``<`` of running text as the start of a raw HTML tag or an autolink,
    and each try reads the rest of the document: the tables and prose of the supplement hold about
    a hundred "P <0.001" and "<= 60", which made parsing the report several times slower than
    writing it. ``\\<`` is a literal ``<`` to pandoc's Markdown, so the parsed document is the same
    (tests/test_render.py compares pandoc's JSON of both). Conservative: front matter, fenced and
    indented code, code spans, math, ``{...}`` attributes, link destinations, blocks with raw HTML
    or TeX, and tables other than pipe tables wider than ``columns`` (pandoc's ``--columns``) are
    left as they are; a document with ``<pre>``/``<script>``/``<style>``/``<textarea>`` is returned
    unchanged.
    """
    if _RAW_CONTENT_TAG_RE.search(markdown):
        return markdown
    front, body = _split_front_matter(markdown)
    out: list[str] = []
    block: list[str] = []
    fence: str | None = None

    def flush() -> None:
        if block:
            out.extend(_escape_block(block, columns))
            block.clear()

    for line in body.split("\n"):
        opening = _FENCE_RE.match(line)
        if fence is not None:
            out.append(line)
            if opening and opening["fence"][0] == fence[0] and len(opening["fence"]) >= len(fence) \
                    and not line.strip()[len(opening["fence"]):].strip():
                fence = None
        elif opening:
            flush()
            fence = opening["fence"]
            out.append(line)
        elif not line.strip():
            flush()
            out.append(line)
        else:
            block.append(line)
    flush()
    return front + "\n".join(out)


# --------------------------------------------------------------------------- renderers

def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RenderError(f"{Path(cmd[0]).name} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    if proc.stderr.strip():
        logger.warning("%s: %s", Path(cmd[0]).name, proc.stderr.strip())


def _run_together(cmds: list[list[str]], cwd: Path) -> None:
    """:func:`_run` for several commands at once, side by side (each in its own process)."""
    logs = [tempfile.TemporaryFile() for _ in cmds]     # not pipes: a full pipe would stall a process
    try:
        procs = [subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=log) for cmd, log in zip(cmds, logs)]
        for proc in procs:
            proc.wait()
        errors = []
        for log in logs:
            log.seek(0)
            errors.append(log.read().decode("utf-8", "replace"))
    finally:
        for log in logs:
            log.close()
    failures = []
    for cmd, proc, stderr in zip(cmds, procs, errors):
        if proc.returncode != 0:
            failures.append(f"{Path(cmd[0]).name} failed ({proc.returncode}): {stderr.strip()[-2000:]}")
        elif stderr.strip():
            logger.warning("%s: %s", Path(cmd[0]).name, stderr.strip())
    if failures:
        raise RenderError(failures[0])


# --------------------------------------------------------------------------- reading the Markdown in two parts

#: Opening line of a table as :func:`embed_markdown` writes it (a fenced Div of its own)
TABLE_BLOCK_OPEN = "::: {.table-block}"
#: Format of the raw block that stands for a table block in the prose part (see :func:`split_table_blocks`)
SPLICE_FORMAT = "supplement-splice"
#: Format of the raw block that stands for a stored table's laid-out blocks (see :class:`TableLayouts`)
SPLICED_FORMAT = "supplement-spliced"
#: Typst comment line that stands for a stored table's Typst (see :meth:`TableLayouts.dumps`)
TYPST_TABLE_MARK = "// supplement-table {number}"
TYPST_TABLE_RE = re.compile(r"^// supplement-table (\d+|end)$", re.M)
_DIV_OPEN_RE = re.compile(r"^:{3,}\s*[^:\s]")
_DIV_CLOSE_RE = re.compile(r"^:{3,}\s*$")
_REFERENCE_DEFINITION_RE = re.compile(r"^[ \t>]*\[[^\]]+\]:")
#: A line after which ``[label]:`` cannot start a link reference definition: paragraph text (a
#: definition cannot interrupt a paragraph: there pandoc reads ``[@key]:`` as a citation and a colon)
_PARAGRAPH_LINE_RE = re.compile(r"^[ \t>]*(?![#|<]|:::|```|~~~)\S")


def has_reference_definition(body: str) -> bool:
    """Whether a line of ``body`` may be a link reference definition (``[label]: url``): a line that
    begins with ``[...]:`` and does not continue a paragraph (pandoc then reads it as text, and a
    citation ``[@key]:`` at the start of a wrapped line is common in prose)."""
    previous = ""
    for line in body.split("\n"):
        if _REFERENCE_DEFINITION_RE.match(line) and not _PARAGRAPH_LINE_RE.match(previous):
            return True
        previous = line
    return False
_BRACKETED_RE = re.compile(r"\[([^\[\]]*)\]")


def _reference_key(text: str) -> str:
    return " ".join(text.split()).casefold()


def split_table_blocks(markdown: str) -> tuple[str, list[str]] | None:
    """The Markdown as two documents pandoc reads side by side: the prose, in which each table block
    (``::: {.table-block}`` ... ``:::``, as :func:`embed_markdown` writes a table) is replaced by a raw
    block ```` ```{=supplement-splice} ```` holding its number, and the table blocks themselves; None
    when the document cannot be split safely (then it is read whole).

    Reading a table block alone gives what reading it within the document gives when nothing in it
    depends on the rest of the document. A block is taken out only when it is a block of its own
    (a blank line before and after, not indented, outside code) and holds no ``@`` (citations and
    example lists are numbered document-wide), no footnote, no heading, and no bracketed text that
    names a heading of the document (implicit header references); no block is taken out of a
    document with link reference definitions, footnotes or LaTeX macro definitions.
    ``tests/test_render_speed.py`` checks that the two readings give pandoc's document of the whole.
    """
    if TABLE_BLOCK_OPEN not in markdown:
        return None
    front, body = _split_front_matter(markdown)
    if (has_reference_definition(body) or "[^" in body or "\\newcommand" in body
            or "\\renewcommand" in body or "\\def" in body):
        return None
    lines = body.split("\n")
    code = [True] * len(lines)
    headings: set[str] = set()
    for i, line in _outside_code(lines):
        code[i] = False
        heading = HEADING_RE.match(line)
        if heading:
            headings.add(_reference_key(heading["text"]))
        elif i and re.match(r"^(=+|-+)\s*$", line) and lines[i - 1].strip() and not lines[i - 1].lstrip().startswith("|"):
            return None     # a setext heading (or a rule right under text): read the whole document
    prose: list[str] = []
    blocks: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip() == TABLE_BLOCK_OPEN and not code[i] and (i == 0 or not lines[i - 1].strip()):
            depth, j = 1, i + 1
            while j < len(lines) and depth:
                if _DIV_OPEN_RE.match(lines[j]):
                    depth += 1
                elif _DIV_CLOSE_RE.match(lines[j]):
                    depth -= 1
                j += 1
            block = lines[i:j]
            text = "\n".join(block)
            if (not depth and (j == len(lines) or not lines[j].strip()) and not any(code[i:j])
                    and "@" not in text and "[^" not in text
                    and not any(row.lstrip().startswith("#") for row in block)
                    and not any(_reference_key(m) in headings for m in _BRACKETED_RE.findall(text))):
                prose += [f"```{{={SPLICE_FORMAT}}}", str(len(blocks)), "```"]
                blocks.append(text)
                i = j
                continue
        prose.append(line)
        i += 1
    if not blocks:
        return None
    return front + "\n".join(prose), blocks


def splice_table_blocks(prose: dict, tables: dict, count: int) -> dict | None:
    """pandoc's document of the prose part with each splice raw block replaced by its table block
    (``tables``: pandoc's document of the table blocks, in order); None when the documents do not
    match (a table block that did not read as one Div, a placeholder not found exactly once)."""
    found = tables.get("blocks") or []
    if len(found) != count or not all(b.get("t") == "Div" and "table-block" in b["c"][0][1] for b in found):
        return None
    used = [0] * count

    def walk(node):
        if isinstance(node, list):
            for k, child in enumerate(node):
                if (isinstance(child, dict) and child.get("t") == "RawBlock"
                        and child["c"][0] == SPLICE_FORMAT):
                    number = int(child["c"][1].strip())
                    if not 0 <= number < count:
                        raise ValueError(number)
                    node[k] = found[number]
                    used[number] += 1
                else:
                    walk(child)
        elif isinstance(node, dict):
            for value in node.values():
                if isinstance(value, (list, dict)):
                    walk(value)

    try:
        walk(prose["blocks"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return prose if used == [1] * count else None


def read_markdown(pandoc: str, source: Path, root: Path, work_dir: Path) -> dict:
    """pandoc's JSON document of the Markdown file ``source`` (read with :func:`_pandoc_reader_args`).

    The prose (with the citations) and the tables are read side by side by two pandoc processes and
    joined (:func:`split_table_blocks`, :func:`splice_table_blocks`): the tables are about half of
    the text pandoc reads, and reading was the longest step before the formats are written. A
    document that cannot be split is read whole."""
    markdown = source.read_text(encoding="utf-8")
    split = split_table_blocks(markdown)
    if split is not None:
        prose_text, blocks = split
        prose_file, tables_file = source.with_name(source.stem + "-prose.md"), source.with_name(source.stem + "-tables.md")
        prose_file.write_text(prose_text, encoding="utf-8")
        tables_file.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
        reader = _pandoc_reader_args(root)
        plain = [a for a in reader if a != "--citeproc" and not a.startswith("--bibliography=")]
        _run_together([[pandoc, tables_file.name, *plain, "--to=json", "-o", tables_file.stem + ".json"],
                       [pandoc, prose_file.name, *reader, "--to=json", "-o", prose_file.stem + ".json"]], work_dir)
        joined = splice_table_blocks(json.loads((work_dir / (prose_file.stem + ".json")).read_text(encoding="utf-8")),
                                     json.loads((work_dir / (tables_file.stem + ".json")).read_text(encoding="utf-8")),
                                     len(blocks))
        if joined is not None:
            return joined
        logger.warning("the table blocks did not read as expected: reading the document whole")
    document = work_dir / f"{source.stem}.json"
    _run([pandoc, source.name, *_pandoc_reader_args(root), "--to=json", "-o", document.name], work_dir)
    return json.loads(document.read_text(encoding="utf-8"))


#: Folder of the output that keeps what the renderer reuses between renders (the pipeline hard-links
#: its files into the staging copy: they are replaced, never rewritten in place)
RENDER_CACHE = ".cache"
#: Name of the file of laid-out tables of one format in :data:`RENDER_CACHE`
TABLE_LAYOUTS = "render-tables-{fmt}.json"
#: Name of the file of the prose's resolved citations in :data:`RENDER_CACHE`
CITATIONS = "render-citations.json"


class TableLayouts:
    """The table blocks of the report laid out for each format, kept between renders.

    The table blocks do not change when only the prose does: pandoc's reading of them
    (:func:`split_table_blocks`), the shared typesetting (:func:`helpers.build.typeset.protect`) and
    each format's layout (:func:`helpers.build.typeset.lay_out_block`) are stored per format in
    ``cache_dir`` (:data:`TABLE_LAYOUTS`), each table under a SHA-256 of its Markdown, pandoc's
    version and reading options, and the code of this module and of helpers.build.typeset, with the
    number of long tables before it (Typst labels count them). A render whose tables are all stored
    reads only the prose with pandoc; a table not stored (or at another place in the count) is read
    and laid out, and stored. The document of each format is the laid-out prose with each placeholder
    replaced by its table's blocks: what laying out the whole document gives, since the layout treats
    blocks one after another and a table block alone reads as within the document. A document that
    cannot be split, or whose tables hold images (Word's figures depend on the files), is read whole
    and laid out as such."""

    def __init__(self, pandoc: str, source: Path, root: Path, work_dir: Path, cache_dir: Path,
                 formats: Iterable[str], docx_header: str | None):
        import threading

        self.pandoc, self.source, self.root, self.work_dir = pandoc, source, root, work_dir
        self.cache_dir, self.formats, self.docx_header = Path(cache_dir), list(formats), docx_header
        self.active = False
        self.blocks: list[str] = []
        self.keys: list[str] = []
        self.stored: dict[str, dict] = {}
        self.used: dict[str, dict] = {}
        self.spliced: dict[str, dict[int, str]] = {}      # per format: the JSON text of each table's blocks
        self.typst_tables: dict[str, dict] = {}         # per format: the Typst of each table put in as a mark
        self.replaced: dict[str, list] = {}
        self.tables: list | None = None      # the protected table blocks as JSON text (read when needed)
        self.lock = threading.Lock()

    def _layout_key(self) -> str:
        from helpers.build import typeset

        reader = [a for a in _pandoc_reader_args(self.root) if a != "--citeproc" and not a.startswith("--bibliography=")]
        digest = hashlib.sha256(json.dumps([reader, fallback_renderer_line(), self.docx_header]).encode())
        for module in (__file__, typeset.__file__):
            digest.update(Path(module).read_bytes())
        return digest.hexdigest()

    def read(self) -> dict:
        """pandoc's document of the prose (tables as placeholders: :data:`SPLICE_FORMAT` raw blocks)
        when the tables can be taken from :data:`TABLE_LAYOUTS` or read apart (``self.active``), else
        of the whole document (:func:`read_markdown`). The citations of the prose are resolved by
        citeproc, or taken from :data:`CITATIONS` when the prose cites the same as at the last render
        (:func:`_citation_key`)."""
        split = split_table_blocks(self.source.read_text(encoding="utf-8"))
        if split is None:
            return read_markdown(self.pandoc, self.source, self.root, self.work_dir)
        prose_text, self.blocks = split
        common = self._layout_key()
        self.keys = [hashlib.sha256(f"{common}|{block}".encode()).hexdigest() for block in self.blocks]
        self.stored = {fmt: self._stored(TABLE_LAYOUTS.format(fmt=fmt)) for fmt in self.formats}
        prose_file = self.source.with_name(self.source.stem + "-prose.md")
        prose_file.write_text(prose_text, encoding="utf-8")
        reader = _pandoc_reader_args(self.root)
        cited_json, plain_json = prose_file.stem + ".json", prose_file.stem + "-plain.json"
        cited_cmd = [self.pandoc, prose_file.name, *reader, "--to=json", "-o", cited_json]
        # without citeproc, with the bibliography: the same metadata
        plain_reader = [a for a in reader if a != "--citeproc"]
        plain_cmd = [self.pandoc, prose_file.name, *plain_reader, "--to=json", "-o", plain_json]
        citations = self._stored(CITATIONS) if "--citeproc" in reader else {}
        need_tables = not all(key in self.stored[fmt] for fmt in self.formats for key in self.keys)
        # with the citations kept, the prose is read section by section (only the sections not kept)
        sections = chunks.split_sections(prose_text) if citations else None
        reader_of_sections = None
        if sections is not None:
            reader_of_sections = chunks.SectionReader(self.pandoc, plain_reader, fallback_renderer_line(),
                                                      self.work_dir, self.cache_dir)
            first = [c for c in [reader_of_sections.command(sections)] if c]
        else:
            first = [plain_cmd] if citations else [cited_cmd]
        commands = first + ([self._tables_command()] if need_tables else [])
        if len(commands) > 1:
            _run_together(commands, self.work_dir)
        elif commands:
            _run(commands[0], self.work_dir)
        if need_tables and not self._take_tables():
            logger.info("the tables are read within the document")
            return read_markdown(self.pandoc, self.source, self.root, self.work_dir)
        prose = None
        if citations:
            plain = reader_of_sections.document() if reader_of_sections is not None else None
            if plain is None:
                if reader_of_sections is not None:
                    logger.warning("the prose did not read section by section: reading it whole")
                    _run(plain_cmd, self.work_dir)
                plain = json.loads((self.work_dir / plain_json).read_text(encoding="utf-8"))
            key = self._citation_key(plain)
            if citations.get("key") == key and citations.get("valid"):
                prose = _apply_citations(plain, citations)
        if prose is None:
            if citations:
                _run(cited_cmd, self.work_dir)      # the citations changed: citeproc resolves them
            prose = json.loads((self.work_dir / cited_json).read_text(encoding="utf-8"))
            if "--citeproc" in reader:
                self._keep_citations(prose, plain_cmd, plain_json)
        if _count_splices(prose["blocks"]) != list(range(len(self.blocks))):
            return read_markdown(self.pandoc, self.source, self.root, self.work_dir)
        self.active = True
        return prose

    def _citation_key(self, plain: dict) -> str:
        """SHA-256 of what citeproc's work depends on: the citations (in order, with their text), the
        metadata, the bibliography and pandoc's version."""
        digest = hashlib.sha256(json.dumps([fallback_renderer_line(), plain.get("meta"),
                                            [cite["c"] for cite in _cites(plain["blocks"])]]).encode())
        bibliography = self.root / BIBLIOGRAPHY
        digest.update(bibliography.read_bytes() if bibliography.exists() else b"")
        return digest.hexdigest()

    def _keep_citations(self, cited: dict, plain_cmd: list[str], plain_json: str) -> None:
        """Store what citeproc made of the prose's citations (:data:`CITATIONS`): the text of each
        citation and the bibliography, marked valid when putting them into pandoc's document of the
        prose read without citeproc gives the document citeproc made (checked here, once)."""
        if cited["meta"].keys() & {"csl", "citation-style", "citation-abbreviations", "references", "nocite"}:
            return      # other inputs of citeproc than the key covers: not kept
        _run(plain_cmd, self.work_dir)
        plain_text = (self.work_dir / plain_json).read_text(encoding="utf-8")
        entry = {"key": self._citation_key(json.loads(plain_text)),
                 "contents": [cite["c"][1] for cite in _cites(cited["blocks"])],
                 "refs": _refs_div(cited["blocks"])}
        entry["valid"] = _apply_citations(json.loads(plain_text), entry) == cited
        self._store(CITATIONS, entry)

    def _stored(self, name: str) -> dict:
        return chunks.read_kept(self.cache_dir / name)

    def _store(self, name: str, value) -> None:
        chunks.keep(self.cache_dir / name, value)

    def _tables_command(self) -> list[str]:
        tables_file = self.source.with_name(self.source.stem + "-tables.md")
        tables_file.write_text("\n\n".join(self.blocks) + "\n", encoding="utf-8")
        plain = [a for a in _pandoc_reader_args(self.root) if a != "--citeproc" and not a.startswith("--bibliography=")]
        return [self.pandoc, tables_file.name, *plain, "--to=json", "-o", tables_file.stem + ".json"]

    def _take_tables(self) -> bool:
        """Read pandoc's document of the tables; False when it is not one Div per table without images."""
        from helpers.build import typeset

        path = self.work_dir / (self.source.stem + "-tables.json")
        found = json.loads(path.read_text(encoding="utf-8")).get("blocks") or []
        if len(found) != len(self.blocks) or not all(b.get("t") == "Div" and "table-block" in b["c"][0][1] for b in found):
            return False
        if '"t": "Image"' in json.dumps(found):
            return False
        for block in found:
            typeset.protect({"blocks": [block]})
        self.tables = [json.dumps(block) for block in found]
        return True

    def _table(self, number: int) -> dict:
        with self.lock:
            if self.tables is None:       # stored for another place in the count of long tables
                _run(self._tables_command(), self.work_dir)
                if not self._take_tables():
                    raise RenderError("the table blocks did not read as they did in the last render")
            return json.loads(self.tables[number])

    def splicer(self, fmt: str):
        """``splice`` for :func:`helpers.build.typeset.lay_out` of ``fmt`` (None when not active)."""
        if not self.active:
            return None
        from helpers.build import typeset

        stored, used = self.stored.get(fmt, {}), self.used.setdefault(fmt, {})
        spliced = self.spliced.setdefault(fmt, {})
        kind = {"pdf": "typst"}.get(fmt, fmt)

        def splice(block: dict, state: dict) -> list:
            number = int(block["c"][1].strip())
            key = self.keys[number]
            entry = stored.get(key)
            if not (isinstance(entry, list) and len(entry) in (3, 4) and entry[0] == state["long"]):
                before = state["long"]
                laid = typeset.lay_out_block(self._table(number), kind, state)
                entry = [before, state["long"], json.dumps(laid)]
            state["long"] = entry[1]
            used[key] = entry
            if entry[2] == "[]":
                return []
            # a marker, replaced by the blocks' JSON text in the document's (see :meth:`dumps`)
            spliced[number] = entry[2]
            return [{"t": "RawBlock", "c": [SPLICED_FORMAT, str(number)]}]
        return (SPLICE_FORMAT, splice)

    def dumps(self, document: dict, fmt: str, typst_writer: list[str] | None = None) -> str:
        """``json.dumps(document)`` of ``fmt``'s laid-out document, the tables' blocks written from
        their stored JSON text (``json.dumps`` of a list is its items' texts joined by ", ").

        ``typst_writer`` (the PDF: pandoc's command writing Typst from JSON, without input and output):
        a table at the top level of the document is written as a Typst comment line
        (:data:`TYPST_TABLE_RE`) that :meth:`splice_typst` replaces by the table's Typst, stored with
        its layout (made by one pandoc run for the tables that have none: pandoc's Typst of a table
        is the same alone as within the document, blocks being written one after another)."""
        self.mark_typst_tables(document, fmt, typst_writer)
        return self.json_text(document, fmt)

    def mark_typst_tables(self, document: dict, fmt: str, typst_writer: list[str] | None) -> None:
        """The Typst mark lines of :meth:`dumps` put in ``document`` (with ``typst_writer``; else none)."""
        typst_tables, replaced = self.typst_tables.setdefault(fmt, {}), self.replaced.setdefault(fmt, [])
        typst_tables.clear(), replaced.clear()
        if self.active and typst_writer is not None:
            blocks = document["blocks"]
            for i, block in enumerate(blocks):
                if block.get("t") == "RawBlock" and block["c"][0] == SPLICED_FORMAT:
                    number = int(block["c"][1])
                    replaced.append((i, block))
                    blocks[i] = {"t": "RawBlock", "c": ["typst", TYPST_TABLE_MARK.format(number=number)]}
                    typst_tables[number] = None
            if typst_tables:
                self._typst_of_tables(fmt, typst_writer, document.get("pandoc-api-version"))

    def json_text(self, document: dict, fmt: str) -> str:
        """``json.dumps(document)`` with the stored tables' blocks of ``fmt`` in place of their markers."""
        text = json.dumps(document)
        if not self.active:
            return text
        spliced = self.spliced.get(fmt, {})
        marker = re.compile(re.escape(json.dumps({"t": "RawBlock", "c": [SPLICED_FORMAT, "0"]})).replace("0", "([0-9]+)"))
        return marker.sub(lambda m: spliced[int(m.group(1))][1:-1], text)

    def _typst_of_tables(self, fmt: str, writer: list[str], api_version) -> None:
        used, typst_tables = self.used.get(fmt, {}), self.typst_tables[fmt]
        missing = []
        for number in typst_tables:
            entry = used[self.keys[number]]
            if len(entry) == 4 and isinstance(entry[3], str):
                typst_tables[number] = entry[3]
            else:
                missing.append(number)
        if not missing:
            return
        # the tables without Typst, each after a mark line, in one document
        parts = []
        for number in missing:
            parts.append(json.dumps({"t": "RawBlock", "c": ["typst", TYPST_TABLE_MARK.format(number=number)]}))
            parts.append(self.spliced[fmt][number][1:-1])
        parts.append(json.dumps({"t": "RawBlock", "c": ["typst", TYPST_TABLE_MARK.format(number="end")]}))
        source = self.work_dir / f"{self.source.stem}-tables-typst.json"
        source.write_text(f'{{"pandoc-api-version": {json.dumps(api_version)}, "meta": {{}}, "blocks": ['
                          + ", ".join(parts) + "]}", encoding="utf-8")
        target = source.with_suffix(".typ")
        _run([self.pandoc, source.name, *writer, "-o", target.name], self.work_dir)
        pieces = TYPST_TABLE_RE.split(target.read_text(encoding="utf-8"))
        found = dict(zip(pieces[1::2], pieces[2::2]))
        for number in missing:
            text = found.get(str(number))
            if text is None:
                raise RenderError(f"pandoc's Typst of the tables lost table {number}")
            text = text.strip("\n")
            typst_tables[number] = text
            used[self.keys[number]] = [*used[self.keys[number]][:3], text]     # stored with its layout

    def splice_typst(self, typst_source: str, fmt: str = "pdf") -> str | None:
        """pandoc's Typst of the document written by :meth:`dumps`, each table's mark line replaced by
        the table's Typst; None when the marks are not each found once on a line of their own."""
        typst_tables = self.typst_tables.get(fmt) or {}
        if not typst_tables:
            return typst_source
        seen: list[int] = []

        def put(match: re.Match) -> str:
            number = int(match.group(1))
            seen.append(number)
            return typst_tables.get(number) or ""
        spliced = TYPST_TABLE_RE.sub(put, typst_source)
        return spliced if sorted(seen) == sorted(typst_tables) else None

    def restore(self, document: dict, fmt: str = "pdf") -> None:
        """Undo :meth:`dumps`'s Typst marks in ``document`` (its JSON then holds every table)."""
        for i, block in self.replaced.get(fmt, []):
            document["blocks"][i] = block
        self.typst_tables[fmt], self.replaced[fmt] = {}, []

    def save(self, fmt: str) -> None:
        """Store the tables laid out for ``fmt`` in this render (only those: others are dropped)."""
        if self.active and self.used.get(fmt) != self.stored.get(fmt):
            self._store(TABLE_LAYOUTS.format(fmt=fmt), self.used.get(fmt, {}))


def _nodes(blocks, kind: str) -> list[dict]:
    """Every element of type ``kind`` in a document's blocks, in document order (not looking inside one)."""
    found: list[dict] = []

    def walk(node) -> None:
        if isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, dict):
            if node.get("t") == kind:
                found.append(node)
                return
            for value in node.values():
                if isinstance(value, (list, dict)):
                    walk(value)
    walk(blocks)
    return found


def _cites(blocks) -> list[dict]:
    """Every Cite of a document's blocks, in document order."""
    return _nodes(blocks, "Cite")


def _refs_place(blocks: list) -> tuple[list, int] | None:
    """Where the Div ``#refs`` (the bibliography) is: its list of blocks and its index there."""
    for i, block in enumerate(blocks):
        if isinstance(block, dict) and block.get("t") == "Div":
            if block["c"][0][0] == "refs":
                return blocks, i
            found = _refs_place(block["c"][1])
            if found is not None:
                return found
    return None


def _refs_div(blocks: list):
    place = _refs_place(blocks)
    return place[0][place[1]] if place is not None else None


def _apply_citations(plain: dict, entry: dict) -> dict | None:
    """``plain`` (pandoc's document read without citeproc) with the citations' text and the
    bibliography of ``entry`` (see :meth:`TableLayouts._keep_citations`); None when they do not fit."""
    cites, contents = _cites(plain["blocks"]), entry.get("contents")
    if not isinstance(contents, list) or len(cites) != len(contents):
        return None
    for cite, content in zip(cites, contents):
        cite["c"][1] = content
    refs, place = entry.get("refs"), _refs_place(plain["blocks"])
    if place is not None:
        if refs is None:
            return None
        place[0][place[1]] = refs
    elif refs is not None:
        plain["blocks"].append(refs)        # citeproc puts the bibliography at the end
    return plain


def _count_splices(blocks) -> list[int]:
    """The numbers of the :data:`SPLICE_FORMAT` raw blocks of a document's blocks, sorted ([] when one is
    malformed)."""
    try:
        return sorted(int(node["c"][1].strip()) for node in _nodes(blocks, "RawBlock")
                      if node["c"][0] == SPLICE_FORMAT)
    except (ValueError, KeyError, IndexError, TypeError):
        return []


def front_matter_field(markdown: str, field: str) -> str | None:
    """The text of ``field`` in the YAML front matter of ``markdown`` (None when absent)."""
    front, _ = _split_front_matter(markdown)
    try:
        value = (yaml.safe_load(front[4:-5]) or {}).get(field) if front else None
    except (yaml.YAMLError, AttributeError):
        return None
    return str(value) if value not in (None, "") else None


_BIB_KEY_RE = re.compile(r"@\w+\s*\{\s*([^,\s]+)\s*,")


def check_citations(document: dict, root: Path, report: str = REPORT) -> None:
    """Raise RenderError naming every citation of ``document`` (pandoc's) whose key is not in
    ``references.bib``, and the files of the report that cite it (pandoc only warns, and the PDF
    would then fail on a missing label); ``@eq-`` keys are said to be equation cross-references,
    which the renderer does not number."""
    bibliography = root / BIBLIOGRAPHY
    known = set(_BIB_KEY_RE.findall(bibliography.read_text(encoding="utf-8"))) if bibliography.exists() else set()
    cited = dict.fromkeys(c["citationId"] for cite in _cites(document["blocks"]) for c in cite["c"][0])
    unknown = [key for key in cited if key not in known]
    if not unknown:
        return
    files = list(iter_documents(root / report, root))
    problems = []
    for key in unknown:
        where = [str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
                 for path, text in files if re.search(rf"@{re.escape(key)}(?!\w|[-:.#$%&+?<>~/]\w)", text)]
        what = ("an equation cross-reference: equations are not numbered (write the equation's place in words)"
                if key.startswith("eq-") else f"not in {BIBLIOGRAPHY}")
        problems.append(f"@{key} ({', '.join(where) or 'the report'}): {what}")
    raise RenderError("unknown citation" + ("s" if len(problems) > 1 else "") + ":\n  " + "\n  ".join(problems))


def _pandoc_reader_args(root: Path) -> list[str]:
    """Reading the report: Markdown, citations resolved by citeproc from ``references.bib``."""
    args = ["--from=markdown", "--standalone", "--citeproc", f"--columns={PANDOC_COLUMNS}",
            f"--resource-path=.:{root}"]
    if (root / BIBLIOGRAPHY).exists():
        args.append(f"--bibliography={root / BIBLIOGRAPHY}")
    return args


def _pandoc_writer_args(root: Path) -> list[str]:
    """Writing one format from the document read once (pandoc's JSON): as standalone files."""
    return ["--from=json", "--standalone", f"--columns={PANDOC_COLUMNS}", f"--resource-path=.:{root}"]


def render_with_pandoc(project_root: Path, output_dir: Path, work_dir: Path,
                       formats: Iterable[str] = FORMATS, report: str = REPORT) -> list[Path]:
    """The fallback renderer: writes report.<format> files into ``work_dir`` and returns them.

    Pandoc reads the Markdown (and resolves the citations) once, into its JSON document; the
    formats are written from that document side by side. The Typst writer gets
    ``typst-citations``: the citations are already resolved, as ``--citeproc`` would tell it.
    """
    import typst

    root = Path(project_root).resolve()
    results_file = Path(output_dir) / "results.json"
    results = json.loads(results_file.read_text(encoding="utf-8")) if results_file.exists() else {}
    markdown = build_markdown(root, results, work_dir, Path(output_dir) / "notebooks",
                              fallback_renderer_line(), report, BuildInfo.read(output_dir))
    stem = Path(report).stem
    source = work_dir / f"{stem}.md"
    source.write_text(escape_lone_angle_brackets(markdown, PANDOC_COLUMNS), encoding="utf-8")
    pandoc = _pandoc_path()
    common = _pandoc_writer_args(root)
    synthetic = bool((results.get("data") or {}).get("synthetic"))

    from helpers.build.docx_style import HEADER_REL_ID

    front_matter = title_block(results, root, Path(output_dir))
    front_matter["subtitle"] = front_matter_field(markdown, "subtitle")
    lists = typst_front_lists(markdown)

    def produce(fmt: str) -> Path:
        if fmt == "pages":      # the notebooks' own pages, linked from the HTML (render_report moves them)
            write_notebook_pages(Path(output_dir) / NOTEBOOK_PAGES, work_dir / "notebook-pages",
                                 BuildInfo.read(output_dir), previous=Path(output_dir) / NOTEBOOK_PAGES)
            return work_dir / "notebook-pages"
        if fmt != order[0]:     # the first format's Python work is done alone: its pandoc starts sooner
            first_written.wait()
        try:
            # the first format lays out the protected document itself, the others a copy of it
            # (json.loads of its text: faster than copy.deepcopy)
            prepared = typeset.lay_out(parsed if fmt == order[0] else json.loads(protected),
                                       {"pdf": "typst"}.get(fmt, fmt),
                                       media_exists=lambda rel: (work_dir / rel).exists(),
                                       docx_header=HEADER_REL_ID if synthetic else None,
                                       splice=tables.splicer(fmt))
            doc = work_dir / f"{stem}-{fmt}.json"
            typst_writer = [a for a in common if a != "--standalone"] + ["--to=typst-citations"]
            if fmt == "pdf":        # written part by part (chunks.TypstSections); the JSON when needed
                tables.mark_typst_tables(prepared, fmt, typst_writer)
            elif fmt == "docx":     # the HTML too is written part by part (chunks.HtmlSections)
                doc.write_text(tables.dumps(prepared, fmt), encoding="utf-8")
            tables.save(fmt)
        finally:
            if fmt == order[0]:
                first_written.set()
        if fmt == "html":
            from helpers.build import html_style

            template = work_dir / "template.html"
            template.write_text(html_style.TEMPLATE, encoding="utf-8")
            style = work_dir / "style.html"
            style.write_text(html_style.style_header(), encoding="utf-8")
            banner = work_dir / "banner.html"
            banner.write_text(HTML_SYNTHETIC_BANNER if synthetic else "", encoding="utf-8")
            block = work_dir / "title-block.html"
            block.write_text(html_style.title_block_html(front_matter), encoding="utf-8")
            out = work_dir / f"{stem}.html"
            # self-contained without --embed-resources (pandoc would parse the page again to embed
            # it: half of the HTML's time): the CSS in the head, the figures as data URIs
            standalone = [*common, "--to=html5", "--mathml", "--toc", "--toc-depth=3",
                          f"--template={template.name}", f"--include-in-header={style.name}",
                          f"--include-before-body={banner.name}", f"--include-before-body={block.name}"]
            body_writer = [pandoc, *[a for a in common if a != "--standalone"], "--to=html5", "--mathml"]
            try:
                page = chunks.HtmlSections(fallback_renderer_line(), work_dir, Path(output_dir) / RENDER_CACHE).write(
                    prepared, lambda document: tables.json_text(document, fmt), body_writer,
                    [pandoc, *standalone], lambda commands: _run_together(commands, work_dir))
            except ValueError as exc:
                logger.info("the HTML is written whole (%s)", exc)
                doc.write_text(tables.json_text(prepared, fmt), encoding="utf-8")
                _run([pandoc, doc.name, *standalone, "-o", out.name], work_dir)
                page = out.read_text(encoding="utf-8")
            out.write_text(html_style.embed_images(page, [work_dir, root]), encoding="utf-8")
        elif fmt == "docx":
            from helpers.build import docx_style

            reference = work_dir / "reference.docx"
            reference.write_bytes(docx_style.reference_docx(pandoc, SYNTHETIC_PAGE_MARK if synthetic else None))
            out = work_dir / f"{stem}.docx"
            # the title block of the Word file: authors, then date, data cut-off and version, as the PDF's
            details = "  ·  ".join(f"{name} {front_matter[key]}" for key, name in
                                   (("date", "Date"), ("cutoff", "Data cut-off"), ("version", "Version"))
                                   if front_matter.get(key))
            authors = [f"--metadata=author:{a['name']}" for a in front_matter.get("authors") or []]
            _run([pandoc, doc.name, *common, "--to=docx", f"--reference-doc={reference.name}",
                  *authors, f"--metadata=date:{details}", "--dpi=300", "-o", out.name], work_dir)
            docx_style.finish_docx(out)
        else:  # pdf
            header = work_dir / "typst-header.typ"
            header.write_text(TYPST_HEADER + (TYPST_SYNTHETIC_HEADER if synthetic else ""), encoding="utf-8")
            before = work_dir / "typst-before.typ"
            before.write_text(typst_title_details(front_matter) + lists, encoding="utf-8")
            typ = work_dir / f"{stem}.typ"
            standalone = [*common, "--to=typst-citations", f"--include-in-header={header.name}",
                          f"--include-before-body={before.name}",
                          "-V", "papersize=a4", "-V", "fontsize=10pt", "-V", "margin.x=2.2cm",
                          "-V", "margin.y=2.4cm", "-V", "page-numbering=1"]
            write_typst = [pandoc, doc.name, *standalone, "-o", typ.name]
            try:
                source_typst = chunks.TypstSections(fallback_renderer_line(), work_dir,
                                                    Path(output_dir) / RENDER_CACHE).write(
                    prepared, lambda document: tables.json_text(document, fmt), [pandoc, *typst_writer],
                    [pandoc, *standalone], lambda commands: _run_together(commands, work_dir))
            except ValueError as exc:
                logger.warning("the Typst could not be written part by part (%s): writing it whole", exc)
                doc.write_text(tables.json_text(prepared, fmt), encoding="utf-8")
                _run(write_typst, work_dir)
                source_typst = typ.read_text(encoding="utf-8")
            source_typst = tables.splice_typst(source_typst)
            if source_typst is None:        # the tables' marks were not found: the whole document's JSON
                logger.warning("the tables' Typst could not be put in place: writing the whole document")
                tables.restore(prepared)
                doc.write_text(tables.dumps(prepared, fmt), encoding="utf-8")
                _run(write_typst, work_dir)
                source_typst = typ.read_text(encoding="utf-8")
            typ.write_text(finish_typst(source_typst), encoding="utf-8")
            out = work_dir / f"{stem}.pdf"
            try:
                typst.compile(str(typ), output=str(out), root=str(work_dir))
            except Exception as exc:  # typst raises its own error type with the compiler message
                raise RenderError(f"typst could not compile {typ.name}: {exc}") from exc
        return out

    formats = list(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise RenderError(f"unknown format '{unknown[0]}' (expected one of {', '.join(FORMATS)})")
    from helpers.build import typeset

    # the prose with a placeholder for each table laid out earlier (or now, once) when the document
    # can be read in parts (TableLayouts), else the whole document
    tables = TableLayouts(pandoc, source, root, work_dir, Path(output_dir) / RENDER_CACHE, formats,
                          HEADER_REL_ID if synthetic else None)
    parsed = tables.read()
    check_citations(parsed, root, report)
    _drop_local_paths(parsed)
    # the typesetting that is the same for every format, done once (typeset.protect); the first
    # format lays out that document, the others a copy of it
    typeset.protect(parsed)
    protected = json.dumps(parsed) if len(formats) > 1 else ""
    # the formats are independent: write them side by side, the PDF (pandoc, then typst: the
    # longest) first; one thread per format (on two cores the Word file would otherwise wait for the
    # HTML, and finish after the PDF). The notebooks' pages (HTML only) come last: usually copied
    # from the last render
    import threading
    from concurrent.futures import ThreadPoolExecutor

    order = sorted(formats, key=lambda fmt: fmt != "pdf") + (["pages"] if "html" in formats else [])
    first_written = threading.Event()
    with ThreadPoolExecutor(max_workers=max(1, len(formats))) as pool:
        produced = dict(zip(order, pool.map(produce, order)))
    return [produced[fmt] for fmt in formats]


def git_version(root: Path) -> str:
    """The short git commit of ``root`` and " (modified)" when the tree has uncommitted changes;
    "unknown" outside a git work tree. Read-only git commands."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=20)
        if commit.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=20)
        return commit.stdout.strip() + (" (modified)" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def build_date() -> str:
    """The build's date, "29 November 2026" (``SOURCE_DATE_EPOCH`` when set, for reproducible builds)."""
    import datetime as _dt

    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    today = (_dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc).date() if epoch and epoch.isdigit()
             else _dt.date.today())
    return f"{today.day} {today:%B %Y}"


def build_sentence(root: Path) -> str:
    """The provenance of this document in words: build date, git commit and whether the tree was modified."""
    version = git_version(root)
    if version == "unknown":
        return f"The document was built on {build_date()} outside a git working tree."
    commit, _, modified = version.partition(" ")
    state = ("; the working tree had uncommitted changes, so the commit alone does not reproduce it"
             if modified else "; the working tree had no uncommitted changes")
    return f"The document was built on {build_date()} from commit {commit} of the project{state}."


def title_block(results: dict, root: Path, output_dir: Path) -> dict:
    """What the title block shows: title, authors (with affiliations), date, data cut-off, version.

    Authors and the cut-off date come from the study's ``study.yaml`` (``authors``: a list of names or
    of ``{name, affiliation}``), found through the pipeline's record of the validated data folder."""
    study = dict(results.get("study") or {})
    try:
        folder = json.loads((output_dir / "validated-data.json").read_text(encoding="utf-8")).get("folder")
        config = yaml.safe_load((Path(folder) / "study.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, TypeError, yaml.YAMLError):
        config = {}
    for key in ("authors", "cutoff_date", "title"):
        study.setdefault(key, config.get(key))
    authors = []
    for entry in study.get("authors") or []:
        if isinstance(entry, dict):
            authors.append({"name": str(entry.get("name", "")), "affiliation": str(entry.get("affiliation", ""))})
        elif entry:
            authors.append({"name": str(entry), "affiliation": ""})
    return {"title": report_title(BuildInfo.read(output_dir), results) or "Supplement",
            "authors": authors, "date": build_date(),
            "cutoff": str(study.get("cutoff_date") or ""), "version": git_version(root)}


def _typst_string(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def typst_title_details(front: dict) -> str:
    """Typst lines under the title: authors and affiliations, date, data cut-off, version."""
    lines = []
    if front.get("authors"):
        names = ", ".join(a["name"] for a in front["authors"])
        lines.append(f"#align(center, text(size: 10pt, {_typst_string(names)}))")
        affiliations = list(dict.fromkeys(a["affiliation"] for a in front["authors"] if a["affiliation"]))
        if affiliations:
            lines.append(f"#align(center, text(size: 8.5pt, {_typst_string('; '.join(affiliations))}))")
    details = [f"Date: {front['date']}"]
    if front.get("cutoff"):
        details.append(f"Data cut-off: {front['cutoff']}")
    details.append(f"Version: {front['version']}")
    lines.append(f"#align(center, text(size: 8.5pt, {_typst_string('  ·  '.join(details))}))")
    return "\n".join(lines) + "\n#v(1em)\n"


_SHORT_CAPTION_RE = re.compile(r"^(.*?)(?::\s|;\s|\.\s|\s\(|$)")


def _plain_caption(caption: str, limit: int = 86) -> str:
    """The caption's first clause, plain, short enough for one line of the lists of tables and figures:
    cut at its last comma before ``limit`` characters, else at a word with an ellipsis."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", caption)
    text = re.sub(r"[*_`\\]", "", text).strip()
    short = _SHORT_CAPTION_RE.match(text).group(1).strip() or text
    if len(short) <= limit:
        return short
    head = short[:limit]
    return head.rsplit(", ", 1)[0] if ", " in head else head[: limit - 1].rsplit(" ", 1)[0] + "…"


def typst_front_lists(markdown: str) -> str:
    """Typst code for the contents, the list of tables and the list of figures (with page numbers and
    links), from the numbered captions of the Markdown, followed by a page break."""
    entries = {"tbl": [], "fig": []}
    for line in markdown.split("\n"):
        table = TABLE_CAPTION_RE.match(line.strip())
        figure = FIGURE_RE.match(line.strip())
        match = table or figure
        if not match:
            continue
        tag, _, caption = match["caption"].partition(": ")
        if not re.fullmatch(r"(Table|Figure) \d+", tag):
            tag, caption = "", match["caption"]
        entries["tbl" if table else "fig"].append((match["label"], tag, _plain_caption(caption)))
    out = ["#outline(title: [Contents], depth: 2)", ""]
    for kind, title in (("tbl", "Tables"), ("fig", "Figures")):
        if not entries[kind]:
            continue
        out.append(f"#heading(level: 1, numbering: none, outlined: false)[{title}]")
        for label, tag, caption in entries[kind]:
            number = tag.split()[-1] if tag else ""
            out.append(f'#block(above: 0.45em, below: 0.45em, link(label({_typst_string(label)}), text(fill: black)['
                       f'#grid(columns: (3.2em, 1fr, auto), column-gutter: 0.4em, [{number}], '
                       f'[#{_typst_string(caption)}#box(width: 1fr, repeat[ . ])], '
                       f'context counter(page).at(label({_typst_string(label)})).first())]))')
        out.append("")
    out.append("#pagebreak()")
    return "\n".join(out) + "\n"


_TABLE_END_RE = re.compile(r"\n(\s*)\)\]\n(\s*), caption:")


_LONG_TABLE_RE = re.compile(r'<(?P<label>long-table-start-\d+)>\n#figure\(\n\s*align\(center\)\[#table\(\n'
                            r'\s*columns: \((?P<cols>[^)]*)\),(?P<mid>(?:(?!#figure\().)*?)table\.header\(', re.S)


def finish_typst(source: str) -> str:
    """The Typst source with a closing rule under every table (journal style: three rules), and a
    "(continued)" line above the header that a long table repeats on each further page."""
    def continued(match: re.Match) -> str:
        ncol = len([c for c in match["cols"].split(",") if c.strip()])
        cell = (f'table.cell(colspan: {ncol}, inset: 0pt, stroke: none)[#context if here().page() != '
                f'locate(<{match["label"]}>).page() {{ block(inset: (bottom: 3pt), text(style: "italic")'
                f'[(continued)]) }}], ')
        return match.group(0) + cell
    source = _LONG_TABLE_RE.sub(continued, source)
    # Typst's smart quotes read a quote after ")" as an opening one ("(REMARK)'." -> "(REMARK)‘."):
    # the closing quote of a quoted title is written out
    source = re.sub(r"\)'(?=[\s.,;:])", ")\u2019", source)
    return _TABLE_END_RE.sub(lambda m: f"\n{m.group(1)}  table.hline(stroke: 0.8pt),\n{m.group(1)})]\n"
                                       f"{m.group(2)}, caption:", source)


def _drop_local_paths(document: dict) -> None:
    """Remove metadata that holds local file paths (the bibliography's path) from pandoc's document,
    so no writer copies it (Word writes metadata into docProps/custom.xml)."""
    meta = document.get("meta") or {}
    for key in ("bibliography", "resource-path"):
        meta.pop(key, None)


STAGED = ("_quarto.yml", REPORT, BIBLIOGRAPHY, "sections", "_extensions")


def stage_sources(stage: Path, build: BuildInfo, results: dict) -> None:
    """Prepare the staged Quarto project for this study: in ``report.qmd`` and ``sections/*.qmd``,
    remove the blocks of absent parts and the embeds of notebooks that did not run (or cells that
    produced no output); set the study's title in ``report.qmd``; list in ``_quarto.yml`` only the
    notebooks that ran."""
    config = stage / "_quarto.yml"
    if config.exists():
        project = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        listed = (project.get("manuscript") or {}).get("notebooks")
        if isinstance(listed, list):
            kept = [entry for entry in listed
                    if (stage / (entry.get("notebook", "") if isinstance(entry, dict) else str(entry))).exists()]
            if len(kept) != len(listed):
                project["manuscript"]["notebooks"] = kept
                config.write_text(yaml.safe_dump(project, sort_keys=False, allow_unicode=True), encoding="utf-8")
    for path in [stage / REPORT, *sorted((stage / "sections").glob("*.qmd"))]:
        if not path.exists():
            continue
        text = select_parts(path.read_text(encoding="utf-8"), build, path.name)

        def prune(match: re.Match) -> str:
            if match.group(1) != "embed":
                return match.group(0)
            parsed = EMBED_TARGET_RE.match(match.group(2).split()[0] if match.group(2).split() else "")
            if not parsed:
                return match.group(0)
            executed = stage / "notebooks" / Path(parsed["notebook"]).name
            if not executed.exists() or not _has_output(executed, parsed["label"]):
                return ""
            return match.group(0)

        text = SHORTCODE_RE.sub(prune, text)
        if path.name == REPORT:
            text = set_front_matter(text, title=report_title(build, results))
        path.write_text(text, encoding="utf-8")


def render_with_quarto(project_root: Path, output_dir: Path, work_dir: Path,
                       formats: Iterable[str] = FORMATS, quarto: str = "quarto") -> list[Path]:
    """Quarto renderer: stage the project with the executed notebooks, ``quarto render`` it there.

    The staged ``notebooks/`` hold the executed copies from ``_output/notebooks/`` (the committed
    notebooks carry no outputs), ``_output/results.json`` is copied for the ``res`` shortcode, and
    ``_quarto.yml`` turns execution off, so Quarto renders the stored outputs only.
    """
    root = Path(project_root).resolve()
    stage = work_dir / "project"
    stage.mkdir()
    for name in STAGED:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, stage / name)
        elif src.exists():
            shutil.copy2(src, stage / name)
    executed = Path(output_dir) / "notebooks"
    build = BuildInfo.read(output_dir)
    (stage / "notebooks").mkdir()
    for nb in sorted((root / "notebooks").glob("*.ipynb")):
        done = executed / nb.name
        if not build.ran(nb.name):
            continue
        if not done.exists():
            raise EmbedError(f"executed notebook {done} does not exist: execute the notebooks first")
        shutil.copy2(done, stage / "notebooks" / nb.name)
    (stage / "_output").mkdir()
    results = {}
    if (Path(output_dir) / "results.json").exists():
        shutil.copy2(Path(output_dir) / "results.json", stage / "_output" / "results.json")
        results = json.loads((stage / "_output" / "results.json").read_text(encoding="utf-8"))
    stage_sources(stage, build, results)
    from helpers.build import docx_style

    synthetic = bool((results.get("data") or {}).get("synthetic"))
    (stage / "_reference.docx").write_bytes(      # named by _quarto.yml's format.docx.reference-doc
        docx_style.reference_docx(_pandoc_path(), SYNTHETIC_PAGE_MARK if synthetic else None))
    # the staged copy is no git work tree: the build sentence (date, commit, modified) is made here, from
    # the project, and read by the res extension's {{< renderer >}} shortcode
    env = dict(os.environ, SUPPLEMENT_RESULTS=str(stage / "_output" / "results.json"),
               SUPPLEMENT_BUILD_SENTENCE=build_sentence(root))
    formats = list(formats)
    quarto_formats = {"html": "html", "pdf": "typst", "docx": "docx"}
    proc = subprocess.run([quarto, "render", "--no-execute",
                           *[a for f in formats for a in ("--to", quarto_formats[f])]],
                          cwd=stage, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RenderError(f"quarto render failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    built = stage / "_manuscript"
    files = []
    for fmt in formats:
        candidates = sorted(built.glob(f"*.{fmt}")) if built.exists() else []
        preferred = [c for c in candidates if c.stem in ("report", "index")]
        if not (preferred or candidates):
            raise RenderError(f"quarto render produced no .{fmt} file in {built}")
        out = work_dir / f"report.{fmt}"
        shutil.move(str((preferred or candidates)[0]), out)
        files.append(out)
    return files


def render_report(project_root: Path, output_dir: Path | None = None,
                  formats: Iterable[str] = FORMATS, renderer: str | None = None) -> RenderInfo:
    """Render the supplement into ``output_dir`` (default ``<project_root>/_output``).

    Uses Quarto when ``quarto`` is on PATH (or ``renderer="quarto"``), else pandoc + Typst
    (``renderer="pandoc+typst"`` forces it). Files are produced in a temporary folder inside
    ``output_dir`` (removed afterwards) and moved into place only when all formats succeeded; on
    failure no report file in ``output_dir`` changes and a RenderError names the cause.
    """
    root = Path(project_root).resolve()
    output_dir = Path(output_dir or root / "_output").resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    formats = tuple(formats)
    quarto = shutil.which("quarto")
    if renderer is None:
        renderer = RENDERER_QUARTO if quarto else RENDERER_FALLBACK
    if renderer not in (RENDERER_QUARTO, RENDERER_FALLBACK):
        raise RenderError(f"unknown renderer '{renderer}'")
    work_dir = Path(tempfile.mkdtemp(prefix=".render-", dir=output_dir))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MissingResultWarning)
        try:
            if renderer == RENDERER_QUARTO:
                if not quarto:
                    raise RenderError("renderer 'quarto' requested but quarto is not on PATH")
                produced = render_with_quarto(root, output_dir, work_dir, formats, quarto)
                detail = "quarto render (manuscript project, execution disabled)"
            else:
                produced = render_with_pandoc(root, output_dir, work_dir, formats)
                detail = fallback_renderer_line()
            final = []
            for path in produced:
                target = output_dir / path.name
                os.replace(path, target)
                final.append(target)
            pages = work_dir / "notebook-pages"
            if pages.is_dir():      # the notebooks' own HTML pages, linked from the HTML report
                target = output_dir / NOTEBOOK_PAGES
                target.mkdir(exist_ok=True)
                made, before = read_pages_record(pages), read_pages_record(target)
                for page in sorted(pages.glob("*.html")):
                    os.replace(page, target / page.name)
                for name in sorted(set(before) - set(made)):     # pages of notebooks that did not run
                    (target / name).unlink(missing_ok=True)
                if (pages / PAGES_RECORD).exists():
                    os.replace(pages / PAGES_RECORD, target / PAGES_RECORD)
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
    missing_values = tuple(dict.fromkeys(str(w.message) for w in caught
                                         if issubclass(w.category, MissingResultWarning)))
    for w in caught:   # pass on any other warning
        if not issubclass(w.category, MissingResultWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return RenderInfo(renderer=renderer, files=tuple(final), detail=detail, missing_values=missing_values)


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.build.render [--to html,pdf,docx] [--renderer quarto|pandoc+typst]``."""
    import argparse

    from helpers.config import PROJECT_ROOT, output_dir

    parser = argparse.ArgumentParser(description="Render the supplement (report.qmd).")
    parser.add_argument("--to", default=",".join(FORMATS), help="comma-separated formats")
    parser.add_argument("--renderer", choices=(RENDERER_QUARTO, RENDERER_FALLBACK), default=None)
    parser.add_argument("--project", type=Path, default=PROJECT_ROOT)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        info = render_report(args.project, args.output or output_dir(),
                             [f for f in args.to.split(",") if f], args.renderer)
    except RenderError as exc:
        print(f"render failed: {exc}", file=sys.stderr)
        return 1
    print(f"Renderer: {info.renderer} - {info.detail}")
    if info.missing_values:
        print(f"Note: not estimated for this cohort: {', '.join(info.missing_values)}")
    for path in info.files:
        print(f"  wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def quoted_results(project_root: Path, build: BuildInfo | None = None, report: str = REPORT) -> list[str]:
    """The results paths the report quotes (``{{< res X >}}``) for a study with ``build``'s parts:
    blocks of absent parts, and the files only they include, are left out. In document order, once each."""
    root = Path(project_root).resolve()
    build = build or BuildInfo()
    found: dict[str, None] = {}

    def visit(path: Path, stack: tuple[Path, ...]) -> None:
        if path in stack or not path.exists():
            return
        text = _strip_comments(select_parts(path.read_text(encoding="utf-8"), build, path.name))
        for match in SHORTCODE_RE.finditer(text):
            if match.group(1) == "res":
                found.setdefault(match.group(2).strip().strip('"').strip("'"), None)
            elif match.group(1) == "include":
                visit(_include_path(match.group(2), path, root).resolve(), stack + (path,))

    visit(root / report, ())
    return list(found)
