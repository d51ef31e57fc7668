"""The HTML page of the fallback renderer: a Quarto-manuscript-like layout without Quarto.

A pandoc template (:data:`TEMPLATE`) puts the title block (title, authors and affiliations, date,
data cut-off, version) above a two-column page: the table of contents in a sticky sidebar on the
left, the article on the right; below 900 px the contents move above the article (phones).
Self-contained: the CSS is in the page (:func:`style_header`) and figures are data URIs
(:func:`embed_images`), as pandoc's ``--embed-resources`` would make them, without pandoc parsing
the page again.
"""
from __future__ import annotations

import base64
import html
import logging
import re
from pathlib import Path
from typing import Iterable

logger = logging.getLogger(__name__)

TEMPLATE = """<!DOCTYPE html>
<html lang="$lang$">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$pagetitle$</title>
$for(header-includes)$
$header-includes$
$endfor$
$for(css)$
<link rel="stylesheet" href="$css$">
$endfor$
</head>
<body>
$for(include-before)$
$include-before$
$endfor$
<div class="page">
<nav id="TOC" class="sidebar" role="doc-toc">
<h2 class="toc-title">On this page</h2>
$table-of-contents$
</nav>
<main class="content" id="content">
$body$
</main>
</div>
$for(include-after)$
$include-after$
$endfor$
</body>
</html>
"""

CSS = """
:root { --text: #212529; --muted: #5a6270; --rule: #333; --accent: #1f4e79; }
html { font-size: 16px; }
body { margin: 0; color: var(--text); font-family: system-ui, -apple-system, 'Segoe UI', Roboto,
       'Helvetica Neue', Arial, sans-serif; line-height: 1.55; background: #fff; }
.title-block { max-width: 72rem; margin: 0 auto; padding: 2rem 1.5rem 1rem; border-bottom: 1px solid #dee2e6; }
.title-block h1.title { font-size: 1.9rem; line-height: 1.25; margin: 0 0 0.3rem; }
.title-block .subtitle { font-size: 1.15rem; color: var(--muted); margin: 0 0 1rem; }
.title-block .authors { margin: 0.4rem 0; }
.title-block .affiliations { color: var(--muted); font-size: 0.9rem; }
.title-block dl.meta { display: flex; flex-wrap: wrap; gap: 0.3rem 2rem; margin: 0.8rem 0 0; font-size: 0.85rem; }
.title-block dl.meta div { display: flex; flex-direction: column; }
.title-block dt { text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); font-size: 0.72rem; }
.title-block dd { margin: 0; }
.page { display: grid; grid-template-columns: 16rem minmax(0, 1fr); gap: 2.5rem; max-width: 72rem;
        margin: 0 auto; padding: 0 1.5rem; }
.sidebar { position: sticky; top: 2.2rem; align-self: start; max-height: calc(100vh - 3rem); overflow-y: auto;
           font-size: 0.82rem; padding: 1.2rem 0; }
.sidebar .toc-title { font-size: 0.8rem; text-transform: uppercase; letter-spacing: 0.05em; color: var(--muted); margin: 0 0 0.5rem; }
.sidebar ul { list-style: none; padding-left: 0.8rem; margin: 0; }
.sidebar > ul { padding-left: 0; }
.sidebar li { margin: 0.15rem 0; }
.sidebar a { color: var(--muted); text-decoration: none; }
.sidebar a:hover { color: var(--accent); }
.content { min-width: 0; max-width: 48rem; padding: 1rem 0 4rem; }
.content h1 { font-size: 1.5rem; margin-top: 2.2rem; border-bottom: 1px solid #dee2e6; padding-bottom: 0.2rem; }
.content h2 { font-size: 1.2rem; margin-top: 1.8rem; }
.content h3 { font-size: 1.05rem; margin-top: 1.4rem; }
a { color: var(--accent); }
.table-block { overflow-x: auto; margin: 1.5rem 0; }
table { border-collapse: collapse; font-size: 0.8rem; font-variant-numeric: tabular-nums; width: auto; max-width: 100%; }
thead tr { border-top: 2px solid var(--rule); border-bottom: 1px solid var(--rule); }
tbody tr:last-child { border-bottom: 2px solid var(--rule); }
th { text-align: left; font-weight: 600; }
th, td { padding: 0.25rem 0.55rem; vertical-align: top; }
caption { caption-side: top; text-align: left; font-size: 0.88rem; margin-bottom: 0.4rem; color: var(--text); }
figure { margin: 1.8rem 0; }
figure img { max-width: 100%; min-width: min(100%, 30rem); height: auto; }   /* narrow figures grow to a readable size, wide ones keep theirs */
figcaption { font-size: 0.88rem; text-align: left; margin-top: 0.4rem; }
.table-notes { font-size: 0.78rem; color: var(--muted); margin-top: 0.3rem; }
.table-notes p { margin: 0.25rem 0; }
blockquote { background: #fff4e5; border-left: 4px solid #e69500; margin: 1rem 0; padding: 0.5rem 1rem; }
.synthetic-banner { text-align: center; }
.notebook-link { font-size: 0.75rem; margin: -0.8rem 0 1.2rem; }
.notebook-link a { color: var(--muted); }
#refs, .references { font-size: 0.88rem; }
@media (max-width: 900px) {
  .page { display: block; padding: 0 1rem; }
  .sidebar { position: static; max-height: none; border-bottom: 1px solid #dee2e6; }
  .title-block { padding: 1.2rem 1rem 0.8rem; }
  .title-block h1.title { font-size: 1.45rem; }
  .content { padding-top: 0.5rem; }
}
@media print { .sidebar { display: none; } .page { display: block; } }
"""


def title_block_html(front: dict) -> str:
    """The title block: title, subtitle (the report's front matter), authors and affiliations, date,
    data cut-off and version."""
    esc = html.escape
    parts = ['<header class="title-block" id="title-block-header">',
             f'<h1 class="title">{esc(front.get("title", ""))}</h1>',
]
    if front.get("subtitle"):
        parts.append(f'<p class="subtitle">{esc(front["subtitle"])}</p>')
    authors = front.get("authors") or []
    if authors:
        parts.append('<p class="authors">' + ", ".join(esc(a["name"]) for a in authors) + "</p>")
        affiliations = list(dict.fromkeys(a["affiliation"] for a in authors if a.get("affiliation")))
        if affiliations:
            parts.append('<p class="affiliations">' + "; ".join(esc(a) for a in affiliations) + "</p>")
    meta = [("Date", front.get("date", "")), ("Data cut-off", front.get("cutoff", "")),
            ("Version", front.get("version", ""))]
    parts.append('<dl class="meta">' + "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>"
                                               for k, v in meta if v) + "</dl>")
    parts.append("</header>")
    return "\n".join(parts) + "\n"


def style_header(css: str = CSS) -> str:
    """The page's ``<style>`` element (for pandoc's ``--include-in-header``): the CSS in the page."""
    return f'<style type="text/css">\n{css.strip()}\n</style>\n'


#: Media types of the images :func:`embed_images` puts in the page
IMAGE_TYPES = {".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".gif": "image/gif", ".webp": "image/webp"}
_IMG_RE = re.compile(r'<img\b(?P<before>[^>]*?)\ssrc="(?P<src>[^"]+)"(?P<after>[^>]*)>')
_ALT_RE = re.compile(r'\salt="(?P<alt>[^"]*)"')


def embed_images(page: str, folders: Iterable[Path]) -> str:
    """``page`` (HTML written by pandoc) with each local image in a data URI, as pandoc's
    ``--embed-resources`` writes it (an SVG also gets ``role="img"`` and its alt text as
    ``aria-label``, for screen readers that do not read the alt text of an SVG image).

    Parameters
    ----------
    page : str
        The HTML text; pandoc escapes ``<``, ``>``, ``&`` and ``"`` in attribute values.
    folders : iterable of Path
        Where a relative ``src`` is looked up, in order (pandoc's ``--resource-path``).

    Returns
    -------
    str
        The page; an image that is remote (``http:``, ``https:``, ``data:``) or not found is left as
        it is (not found: a warning names it, as pandoc warns).
    """
    folders = [Path(folder) for folder in folders]
    encoded: dict[str, str | None] = {}

    def uri(src: str) -> str | None:
        if src not in encoded:
            encoded[src] = None
            suffix = Path(src).suffix.lower()
            if ":" not in src and suffix in IMAGE_TYPES:
                found = next((folder / src for folder in folders if (folder / src).is_file()), None)
                if found is None:
                    logger.warning("the image %s was not found: it is not embedded in the HTML", src)
                else:
                    data = base64.b64encode(found.read_bytes()).decode("ascii")
                    encoded[src] = f"data:{IMAGE_TYPES[suffix]};base64,{data}"
        return encoded[src]

    def replace(match: re.Match) -> str:
        data = uri(html.unescape(match["src"]))
        if data is None:
            return match.group(0)
        before, after = match["before"], match["after"]
        if data.startswith("data:image/svg+xml") and "aria-label=" not in before + after:
            alt = _ALT_RE.search(before + after)
            before = ' role="img"' + (f' aria-label="{alt["alt"]}"' if alt else "") + before
        return f'<img{before} src="{data}"{after}>'
    return _IMG_RE.sub(replace, page)
