"""The prose converted section by section, each section kept between renders (issue 16, item 4).

A prose-only edit changes one section of the report. pandoc's reading of the Markdown and its
writing of Typst and HTML treat the blocks of a document one after another, so a section converted
alone gives what converting it within the document gives, once the few things that span sections
are ruled out or redone:

* reading (:func:`split_sections`, :class:`SectionReader`): the prose is cut before each level-1 and
  level-2 heading at the top level; each section's blocks are stored under a SHA-256 of its text,
  pandoc's version and reading options, and this module's code, and only the sections not stored are
  read (in one pandoc run, a raw block between them). What pandoc reads document-wide is refused,
  and the prose then read whole: in the Markdown, example lists, notes, citations in the metadata,
  raw HTML blocks and metadata blocks after the front matter; in the joined document
  (:func:`cross_section_state`), a repeated heading identifier or one that pandoc numbered, a link to
  a heading by its text, and citations in captions, links or notes. The citations' note numbers,
  which pandoc counts document-wide, are counted again over the joined document;
* writing Typst (:class:`TypstSections`): the laid-out document is cut before the same headings;
  each part's Typst is stored under a SHA-256 of its JSON, the writing options and this module's
  code, and the parts not stored are written in one pandoc run (a mark line between them), each with
  the space pandoc puts after its last block (a blank line, none after raw Typst); pandoc then
  writes the standalone file (template, header, title) around one mark that the parts replace;
* writing HTML (:class:`HtmlSections`): the same, the standalone page written with the document's
  headings (for its table of contents) between two marks that the parts replace; a document with
  notes (pandoc collects them at the end of the page) is written whole.

``tests/test_render_speed.py`` checks each against pandoc's conversion of the whole document, on a
demonstration document and, in ``make check``, on the report itself.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Callable

logger = logging.getLogger(__name__)

#: Folder-relative names of the stored sections in the output's render cache
READ_SECTIONS = "render-prose-sections.json"
TYPST_SECTIONS = "render-typst-sections.json"
HTML_SECTIONS = "render-html-sections.json"
#: Format of the raw block put between sections read in one pandoc run
SECTION_FORMAT = "supplement-section"
#: Typst comment line put between parts written in one pandoc run, and in place of the body
TYPST_PART_MARK = "// supplement-part {number}"
TYPST_PART_RE = re.compile(r"^// supplement-part (\d+|body|end)$", re.M)
#: The same in HTML
HTML_PART_MARK = "<!-- supplement-part {number} -->"
HTML_PART_RE = re.compile(r"^<!-- supplement-part (\d+|body|end) -->$", re.M)
#: Headings before which the document is cut (levels 1 and 2: the report's sections)
CUT_LEVELS = 2


def read_kept(path: Path) -> dict:
    """The dictionary stored at ``path`` in the render cache ({} when absent or unreadable)."""
    try:
        stored = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return stored if isinstance(stored, dict) else {}


def keep(path: Path, value) -> None:
    """Store ``value`` as JSON at ``path`` in the render cache: a new file replacing the last (the
    pipeline's staging copy hard-links the last one); a cache that cannot be written only costs time at
    the next render (a warning says so)."""
    path, tmp = Path(path), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(value, handle)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        logger.warning("%s could not be stored: %s", path.name, exc)
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


class KeptPieces:
    """Converted pieces kept in one JSON file of the render cache, by key.

    ``get`` takes a piece stored at the last render (or put by this one); ``save`` keeps only the
    pieces used by this render."""

    def __init__(self, cache_dir: Path, name: str):
        self.path = Path(cache_dir) / name
        self.stored: dict = read_kept(self.path)
        self.used: dict = {}

    def get(self, key: str):
        value = self.used.get(key, self.stored.get(key))
        if value is not None:
            self.used[key] = value
        return value

    def put(self, key: str, value) -> None:
        self.used[key] = value

    def save(self) -> None:
        if self.used != self.stored:
            keep(self.path, self.used)


#: A line opening a raw HTML block (pandoc reads Markdown inside it, headings too); a comment that
#: closes on its line is not one
_HTML_BLOCK_RE = re.compile(r"^\s{0,3}<(?!!--.*-->\s*$)[A-Za-z!?/]")
#: An example list item (``(@)``, ``@.``, ``(@label)``, ``@label)``): pandoc numbers them document-wide
_EXAMPLE_RE = re.compile(r"^\s*\(?@[\w-]*[.)](?=\s)", re.M)


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """SHA-256 of this module's code: a piece kept by other code is not taken."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def _key(*parts) -> str:
    """The key of a kept piece: what converting it depends on, and this module's code."""
    return hashlib.sha256(json.dumps([_code_digest(), *parts], ensure_ascii=False).encode("utf-8")).hexdigest()


def _identifier_key(text: str) -> str:
    """A coarser form of pandoc's automatic identifier of a heading's text: lower case, letters and
    digits only, from the first letter ("section" without a letter). Two plain headings pandoc would
    give the same identifier get the same key (headings with links or spans, or in block quotes, are
    checked on the document read: :func:`cross_section_state`)."""
    text = "".join(ch for ch in text.casefold() if ch.isalnum())
    first = re.search(r"[^\W\d_]", text)
    return text[first.start():] if first else "section"


def split_sections(markdown: str) -> list[str] | None:
    """The Markdown cut before each ATX heading of level 1 or 2 outside code and fenced divs (and
    after a blank line); the front matter stays with the first section. ``"\\n".join`` of the
    sections gives the Markdown back. None when the document is not cut (one section, or something
    pandoc reads document-wide: see the module's docstring)."""
    from helpers.build.render import (_BRACKETED_RE, _DIV_CLOSE_RE, _DIV_OPEN_RE, HEADING_RE, _outside_code,
                                      _reference_key, _split_front_matter)

    front, body = _split_front_matter(markdown)
    if "(@" in body or _EXAMPLE_RE.search(body):
        return None         # example lists are numbered document-wide
    if "^[" in body or "@" in front or SECTION_FORMAT in markdown:
        return None         # notes and citations in the metadata count before the body's citations
    lines = body.split("\n")
    outside = dict(_outside_code(lines))
    identifiers: set[str] = set()
    headings: set[str] = set()
    cuts = [0]
    depth = 0
    for i, line in outside.items():
        if line.rstrip() == "---" and i + 1 < len(lines) and lines[i + 1].strip():
            return None     # a metadata block (or a setext heading): read whole
        if _HTML_BLOCK_RE.match(line):
            return None     # raw HTML, whose blocks may hold headings: read whole
        if _DIV_OPEN_RE.match(line):
            depth += 1
            continue
        if _DIV_CLOSE_RE.match(line):
            depth = max(0, depth - 1)
            continue
        heading = HEADING_RE.match(line)
        if not heading:
            continue
        attrs = heading["attrs"] or ""
        explicit = re.search(r"#([^\s}]+)", attrs)
        key = _identifier_key(explicit.group(1) if explicit else heading["text"])
        if key in identifiers:
            return None     # pandoc would number a repeated identifier
        identifiers.add(key)
        headings.add(_reference_key(heading["text"]))
        if depth == 0 and len(heading["hashes"]) <= CUT_LEVELS and i and not lines[i - 1].strip():
            cuts.append(i)
    if any(_reference_key(text) in headings for text in _BRACKETED_RE.findall(body)):
        return None         # an implicit link to a heading
    if len(cuts) < 2:
        return None
    cuts.append(len(lines))
    sections = ["\n".join(lines[a:b]) for a, b in zip(cuts, cuts[1:]) if b > a]
    sections[0] = front + sections[0]
    return sections


#: Elements whose citations pandoc's reader does not number as the document order of ``Cite`` says
#: (an image's caption is also its alt text; a link's text is not counted; a table's caption comes
#: after its rows in the source), and notes, which take numbers of their own
_CITES_NUMBERED_OTHERWISE = ("Image", "Link", "Figure", "Table", "Note")


def cross_section_state(blocks: list, markdown: str) -> str | None:
    """Why the document read section by section may differ from pandoc's reading of the whole: what
    pandoc numbers or resolves document-wide (None when there is none). Checked on the joined
    document, whatever the Markdown looked like: a repeated heading identifier, an automatic one that
    pandoc numbered (``-1``, ``-2``, ...; read with another section), a link to a heading by its text,
    an example list, a citation whose note number is not its place among the document's ``Cite``."""
    from helpers.build.render import _BRACKETED_RE, _reference_key
    from helpers.build.typeset import stringify

    identifiers: list[str] = []
    headings: set[str] = set()
    found: list[str] = []

    def walk(node, inside: bool) -> None:
        if isinstance(node, list):
            for child in node:
                walk(child, inside)
            return
        if not isinstance(node, dict):
            return
        kind = node.get("t")
        if kind == "Header":
            identifiers.append(node["c"][1][0])
            headings.add(_reference_key(stringify(node["c"][2])))
        elif kind == "OrderedList" and node["c"][0][1].get("t") == "Example":
            found.append("an example list")
        elif kind == "Cite" and inside:
            found.append("a citation in a caption, a link or a note")
        elif kind == "Note":
            found.append("a note")
        inside = inside or kind in _CITES_NUMBERED_OTHERWISE
        for value in node.values():
            if isinstance(value, (list, dict)):
                walk(value, inside)
    walk(blocks, False)
    if found:
        return found[0]
    if len(set(identifiers)) < len(identifiers):
        return "two headings with one identifier"
    numbered = [i for i in identifiers if re.search(r"-\d+$", i) and "#" + i not in markdown]
    if numbered:
        return f"the heading identifier {numbered[0]} (numbered by pandoc)"
    bracketed = {_reference_key(re.sub(r"[*_`]", "", text)) for text in _BRACKETED_RE.findall(markdown)}
    if bracketed & headings:
        return "a link to a heading by its text"
    return None


def number_citations(blocks: list) -> None:
    """Set each citation's note number as pandoc's Markdown reader counts it over a whole document
    without notes, and without citations in captions or links (:func:`cross_section_state`): the n-th
    citation group (``Cite``) of the document is note n."""
    from helpers.build.render import _cites

    for number, cite in enumerate(_cites(blocks), start=1):
        for citation in cite["c"][0]:
            citation["citationNoteNum"] = number


class SectionReader:
    """pandoc's reading of the prose section by section (see the module's docstring).

    ``command(sections)`` is the pandoc command reading the sections not stored (None when every
    section is stored); after it ran, ``document()`` is pandoc's JSON document of the whole prose.
    """

    def __init__(self, pandoc: str, reader_args: list[str], version: str, work_dir: Path, cache_dir: Path,
                 stem: str = "report-prose-sections"):
        self.pandoc, self.reader_args, self.work_dir = pandoc, list(reader_args), Path(work_dir)
        self.version, self.stem = version, stem
        self.kept = KeptPieces(cache_dir, READ_SECTIONS)
        self.sections: list[str] = []
        self.keys: list[str] = []
        self.missing: list[int] = []

    def command(self, sections: list[str]) -> list[str] | None:
        self.sections = sections
        self.keys = [_key(self.version, self.reader_args, i == 0, text) for i, text in enumerate(sections)]
        self.missing = [i for i, key in enumerate(self.keys) if self.kept.get(key) is None]
        if not self.missing:
            return None
        parts = []
        for i in self.missing:
            parts.append(f"```{{={SECTION_FORMAT}}}\n{i}\n```")
            parts.append(self.sections[i])
        source = self.work_dir / f"{self.stem}.md"
        # the first section (with the front matter) is read first when it is read
        text = "\n\n".join(parts[1:] if self.missing[0] == 0 else parts) + "\n"
        source.write_text(text, encoding="utf-8")
        return [self.pandoc, source.name, *self.reader_args, "--to=json", "-o", f"{self.stem}.json"]

    def document(self) -> dict | None:
        """The joined document; None (the reason logged) when the sections read did not come back one by
        one, or when the document holds what pandoc reads document-wide (:func:`cross_section_state`)."""
        if self.missing:
            read = json.loads((self.work_dir / f"{self.stem}.json").read_text(encoding="utf-8"))
            current = self.missing[0] if self.missing[0] == 0 else None      # the first has no raw block before it
            pieces: dict[int, list] = {} if current is None else {0: []}
            for block in read["blocks"]:
                if block.get("t") == "RawBlock" and block["c"][0] == SECTION_FORMAT:
                    current = int(block["c"][1].strip())
                    pieces[current] = []
                    continue
                if current is None:
                    logger.info("the prose is read whole: a section did not read apart")
                    return None
                pieces.setdefault(current, []).append(block)
            if sorted(pieces) != self.missing:
                logger.info("the prose is read whole: the sections did not read apart")
                return None
            for i in self.missing:
                entry = {"blocks": pieces[i], "api": read.get("pandoc-api-version")}
                if i == 0:
                    entry["meta"] = read.get("meta", {})
                # kept as JSON text: the joined document is typeset in place, the kept pieces must not be
                self.kept.put(self.keys[i], json.dumps(entry))
        entries = [json.loads(self.kept.get(key)) for key in self.keys]
        blocks = [block for entry in entries for block in entry["blocks"]]
        self.kept.save()
        reason = cross_section_state(blocks, "\n".join(self.sections))
        if reason is not None:
            logger.info("the prose is read whole: it holds %s", reason)
            return None
        number_citations(blocks)
        return {"pandoc-api-version": entries[0]["api"], "meta": entries[0].get("meta", {}), "blocks": blocks}


def cut_blocks(blocks: list) -> list[list]:
    """The document's top-level blocks cut before each heading of level 1 or 2."""
    parts: list[list] = [[]]
    for block in blocks:
        if block.get("t") == "Header" and block["c"][0] <= CUT_LEVELS and parts[-1]:
            parts.append([])
        parts[-1].append(block)
    return parts


class TypstSections:
    """pandoc's Typst of a laid-out document, part by part (see the module's docstring).

    :class:`HtmlSections` is the same for HTML; a subclass says how marks are written and where the
    body goes in pandoc's standalone file (:meth:`shell_blocks`, :meth:`put_body`)."""

    #: the raw format of the marks, their text, the pattern that finds them, the cache file, the suffix
    raw, mark_text, mark_re, kept_name, suffix = "typst", TYPST_PART_MARK, TYPST_PART_RE, TYPST_SECTIONS, ".typ"

    def __init__(self, version: str, work_dir: Path, cache_dir: Path, stem: str = "report-typst"):
        self.version, self.work_dir, self.stem = version, Path(work_dir), stem
        self.kept = KeptPieces(cache_dir, self.kept_name)

    def mark(self, number) -> dict:
        return {"t": "RawBlock", "c": [self.raw, self.mark_text.format(number=number)]}

    def shell_blocks(self, blocks: list) -> list:
        """The blocks of the standalone file pandoc writes around the body: one mark."""
        return [self.mark("body")]

    def put_body(self, shell: str, body: str) -> str:
        """``shell`` (pandoc's standalone file of :meth:`shell_blocks`) with ``body`` in place of its mark."""
        if self.mark_re.findall(shell) != ["body"]:
            raise ValueError("pandoc's standalone file lost the body's mark")
        return self.mark_re.sub(lambda _m: body, shell)

    def write(self, document: dict, json_text: Callable[[dict], str], body_writer: list[str],
              standalone_writer: list[str], run_together: Callable[[list[list[str]]], None]) -> str:
        """The standalone file of ``document``.

        ``json_text(document)`` gives the JSON text pandoc reads (the stored tables spliced in);
        ``body_writer`` is pandoc's command writing the format from JSON without input, output or
        template; ``standalone_writer`` the same with the template and its variables. Raises
        ValueError when pandoc's output does not come back part by part."""
        if any(a.startswith(("--highlight-style", "--syntax-highlighting")) and not a.endswith("=none")
               for a in standalone_writer):
            raise ValueError("a highlighting style puts definitions for the document's code in the template")
        api, meta = document.get("pandoc-api-version"), document.get("meta", {})
        parts = cut_blocks(document["blocks"])
        texts = [json_text({"pandoc-api-version": api, "meta": {}, "blocks": part}) for part in parts]
        keys = [_key(self.version, body_writer, text) for text in texts]
        missing = [i for i, key in enumerate(keys) if self.kept.get(key) is None]
        shell = self.work_dir / f"{self.stem}-shell.json"
        shell.write_text(json_text({"pandoc-api-version": api, "meta": meta,
                                    "blocks": self.shell_blocks(document["blocks"])}), encoding="utf-8")
        commands = [[*standalone_writer, shell.name, "-o", shell.with_suffix(self.suffix).name]]
        if missing:
            joined = []
            prefix = f'{{"pandoc-api-version": {json.dumps(api)}, "meta": {{}}, "blocks": ['
            for i in missing:
                if not (texts[i].startswith(prefix) and texts[i].endswith("]}")):
                    raise ValueError(f"part {i} is not a document of blocks")
                joined.append(json.dumps(self.mark(i)))
                joined.append(texts[i][len(prefix):-2])
            joined.append(json.dumps(self.mark("end")))
            source = self.work_dir / f"{self.stem}-parts.json"
            source.write_text(prefix + ", ".join(piece for piece in joined if piece) + "]}", encoding="utf-8")
            commands.append([*body_writer, source.name, "-o", source.with_suffix(self.suffix).name])
        run_together(commands)
        if missing:
            written = (self.work_dir / f"{self.stem}-parts{self.suffix}").read_text(encoding="utf-8")
            pieces = self.mark_re.split(written)
            found = dict(zip(pieces[1::2], pieces[2::2]))
            for i in missing:
                if not found.get(str(i), "").startswith("\n"):
                    raise ValueError(f"pandoc's output lost part {i}")
                # from the line after the mark to the next mark: with the space pandoc puts after the
                # part's last block (a blank line, or none after raw Typst)
                self.kept.put(keys[i], found[str(i)][1:])
        body = "".join(self.kept.get(key) for key in keys).rstrip("\n")
        self.kept.save()
        return self.put_body(shell.with_suffix(self.suffix).read_text(encoding="utf-8"), body)


class HtmlSections(TypstSections):
    """pandoc's HTML of a laid-out document, part by part: as :class:`TypstSections`, the standalone
    page written with the document's headings (its table of contents) between two marks that the
    parts replace. A document with notes (collected at the end of the page), or with a heading that
    is not at the top level, is refused (ValueError)."""

    raw, mark_text, mark_re, kept_name, suffix = "html", HTML_PART_MARK, HTML_PART_RE, HTML_SECTIONS, ".html"

    def __init__(self, version: str, work_dir: Path, cache_dir: Path, stem: str = "report-html"):
        super().__init__(version, work_dir, cache_dir, stem)

    def shell_blocks(self, blocks: list) -> list:
        from helpers.build.render import _nodes

        headings = [block for block in blocks if block.get("t") == "Header"]
        if len(_nodes(blocks, "Header")) != len(headings) or _nodes(blocks, "Note"):
            raise ValueError("a note, or a heading below the top level")
        return [self.mark("body"), *headings, self.mark("end")]

    def put_body(self, shell: str, body: str) -> str:
        found = self.mark_re.findall(shell)
        if found != ["body", "end"]:
            raise ValueError("pandoc's standalone page lost the body's marks")
        start, end = (m for m in self.mark_re.finditer(shell))
        return shell[:start.start()] + body + shell[end.end():]
