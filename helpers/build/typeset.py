"""Typesetting of the fallback renderer: one pass over pandoc's document (its JSON AST) per format.

pandoc reads the report once (helpers.build.render); before each format is written, :func:`prepare`
adjusts the document the way a journal's typesetter would:

* **Column widths from content.** Each table column gets a width from its cells' text (the widest
  cell, and the widest word or estimate that must not break), measured in points at the table's type
  size; a table whose unbreakable minimum does not fit the portrait text width is set on a landscape
  page (PDF). pandoc writes the widths into Typst (``columns: (..%)``), Word (``w:tblGrid``) and HTML.
* **No break inside an estimate.** "10.8 (8.0–12.3)", "P = 0.03" and "P <0.001" are joined by
  no-break spaces, and a word joiner (U+2060) follows the en dash of a range, so no renderer breaks
  them (Unicode line breaking, UAX #14, rules LB11-LB12).
* **Symbols.** ``<=`` and ``>=`` become ≤ and ≥; an ``x`` standing alone between words becomes ×.
* **Table notes.** A ``Div`` of class ``table-notes`` (written by the embed of a table) is set in
  smaller type directly under its table (Typst), in the "Table Note" paragraph style (Word).
* **Figures.** Word gets the 300-dpi PNG of a figure whose vector SVG the PDF and HTML show.
"""
from __future__ import annotations

import copy
import re
from typing import Any

#: Portrait and landscape text widths of the PDF and the Word page (A4, 2.2 cm side margins; 2.4 cm
#: top and bottom margins become the side margins on a landscape page), in points
PORTRAIT_WIDTH_PT = (210 - 2 * 22) / 25.4 * 72
LANDSCAPE_WIDTH_PT = (297 - 2 * 24) / 25.4 * 72
#: Type size of table cells (points) and the horizontal padding of a cell (points, both sides)
TABLE_FONT_PT = 8.0
CELL_PADDING_PT = 8.0

#: Tables of at most this many rows (header included) are kept on one page with their caption and notes
KEEP_TOGETHER_ROWS = 32
#: Opening of a float in the Typst output: the top of the page where it fits (the current one if there is
#: room), so it never lands below text that follows it; floats are flushed before each (sub)section
#: (helpers.build.render.TYPST_HEADER)
FLOAT_OPENING = "#place(top, float: true, clearance: 1.5em)["

#: Label prefix of the start of a table that may break across pages (see helpers.build.render.finish_typst)
LONG_TABLE_LABEL = "long-table-start"

NBSP = "\u00a0"
WORD_JOINER = "\u2060"

_NUMBER = r"[<>≤≥]?[-−]?\d[\d.,]*%?"
_ESTIMATE_CI_RE = re.compile(r"^\([-−]?\d[\d.,]*%?\s*[–-]" + WORD_JOINER + r"?\s*[-−]?\d[\d.,]*%?\)[,;.]?$")
_NUMBER_RE = re.compile(rf"^{_NUMBER}[),;.:]*$")
_IQR_OPEN_RE = re.compile(r"^\[[-−]?\d[\d.]*,$")
_IQR_CLOSE_RE = re.compile(r"^[-−]?\d[\d.]*\][,;.)]*$")
_OPEN_LIMIT_RE = re.compile(r"^\([-−]?\d[\d.,]*%?$")                  # "(−4.0" of "(−4.0 to 28.2)"
_PERCENT_RE = re.compile(r"^\([-−]?\d[\d.,]*%?\)[,;.]?$")          # the (%) of "87 (100.0)"
_RANGE_DASH_RE = re.compile(r"(?<=\d)–(?=[\d-])")
_P_WORDS = {"P", "p", "P=", "p="}
_RELATIONS = {"=", "<", ">", "≤", "≥", "<=", ">="}

# em widths of Libertinus Serif (Typst's default font), rounded up
_WIDE = set("MWmw@%")
_UPPER = set("ABCDEFGHIJKLNOPQRSTUVXYZ")
_NARROW = set("ilj.,;:'|!()[]{}/\\ \u00a0-")


def text_width_pt(text: str, size: float = TABLE_FONT_PT) -> float:
    """Estimated width of ``text`` set in one line at ``size`` points (Libertinus Serif metrics)."""
    em = 0.0
    for char in text:
        if char in (WORD_JOINER,):
            continue
        if char in _WIDE:
            em += 0.82
        elif char in _UPPER:
            em += 0.66
        elif char in _NARROW:
            em += 0.29
        elif char.isdigit():
            em += 0.5
        else:
            em += 0.5
    return em * size * 1.04


# --------------------------------------------------------------------------- AST helpers

def stringify(node: Any) -> str:
    """The plain text of an AST node (inlines, blocks or lists of them)."""
    if isinstance(node, list):
        return "".join(stringify(n) for n in node)
    if not isinstance(node, dict):
        return ""
    kind = node.get("t")
    if kind == "Str":
        return node["c"]
    if kind in ("Space", "SoftBreak"):
        return " "
    if kind == "LineBreak":
        return "\n"
    if kind in ("Code", "Math"):
        return node["c"][1]
    if kind in ("Para", "Plain", "Emph", "Strong", "Underline", "SmallCaps", "Strikeout", "Superscript",
                "Subscript"):
        return stringify(node["c"])
    if kind in ("Span", "Link", "Quoted", "Cite", "Image", "Div"):
        content = node["c"]
        return stringify(content[1] if kind in ("Span", "Link", "Quoted", "Cite", "Image", "Div") else content)
    if "c" in node:
        return stringify(node["c"])
    return ""


def _is(node: Any, kind: str) -> bool:
    return isinstance(node, dict) and node.get("t") == kind


def _inline_lists(node: Any):
    """Every list of inlines in the document (yielded before its children are visited)."""
    if isinstance(node, list):
        if node and all(isinstance(n, dict) and n.get("t") in _INLINE_KINDS for n in node):
            yield node
        for child in node:
            yield from _inline_lists(child)
    elif isinstance(node, dict):
        if node.get("t") in ("Code", "CodeBlock", "RawBlock", "RawInline", "Math"):
            return
        for value in node.values():
            if isinstance(value, (list, dict)):
                yield from _inline_lists(value)


_INLINE_KINDS = {"Str", "Space", "SoftBreak", "LineBreak", "Emph", "Strong", "Underline", "Strikeout",
                 "Superscript", "Subscript", "SmallCaps", "Quoted", "Cite", "Code", "Math", "RawInline",
                 "Link", "Image", "Note", "Span"}


#: A hyphen standing for a minus sign: before a digit, not after a letter or digit ("-0.15", "(-4.0 to 2.1)";
#: not "T1-2", "2014-2023", "G3-G4")
_MINUS_RE = re.compile(r"(?<![\w.\u2013-])-(?=\d)")


_SYMBOL_CHARS = frozenset("<>-–")


def _symbols(text: str) -> str:
    if _SYMBOL_CHARS.isdisjoint(text):     # most words: nothing to replace
        return text
    text = text.replace("<=", "≤").replace(">=", "≥")
    text = _MINUS_RE.sub("\u2212", text)
    return _RANGE_DASH_RE.sub("–" + WORD_JOINER, text)


def protect_inlines(inlines: list) -> None:
    """In place: Unicode symbols, and no-break joins inside estimates and P values (module docstring)."""
    for node in inlines:
        if _is(node, "Str"):
            node["c"] = _symbols(node["c"])
    out: list = []
    i = 0
    while i < len(inlines):
        node = inlines[i]
        if _is(node, "Space") and out and _is(out[-1], "Str") and i + 1 < len(inlines) \
                and _is(inlines[i + 1], "Str"):
            before, after = out[-1]["c"], inlines[i + 1]["c"]
            raw_last = before.rsplit(NBSP, 1)[-1]
            last = raw_last.lstrip("([")
            # every join needs a number after the space, a relation, "to", or P before it
            join = (any(c.isdigit() for c in after) or after in _RELATIONS or after == "to"
                    or last in _P_WORDS) and ((_NUMBER_RE.match(last) and _ESTIMATE_CI_RE.match(after))
                    or last in _P_WORDS or (last in _RELATIONS and _NUMBER_RE.match(after))
                    or (last in _P_WORDS | {"n", "N"} and after in _RELATIONS)
                    or (_NUMBER_RE.match(last) and _IQR_OPEN_RE.match(after))      # 3.2 [1.9, 4.4]
                    or (_NUMBER_RE.match(last) and _PERCENT_RE.match(after))       # 87 (100.0)
                    # 12.1 (−4.0 to 28.2): an interval written with "to" (a negative limit) stays whole
                    or (_NUMBER_RE.match(last) and _OPEN_LIMIT_RE.match(after) and i + 3 < len(inlines)
                        and _is(inlines[i + 3], "Str") and inlines[i + 3]["c"] == "to")
                    or (_OPEN_LIMIT_RE.match(raw_last.split(NBSP)[-1]) and after == "to")
                    or (raw_last == "to" and _NUMBER_RE.match(after))
                    or (_IQR_OPEN_RE.match(raw_last) and _IQR_CLOSE_RE.match(after)))
            if after == "x" and i + 2 < len(inlines) and _is(inlines[i + 2], "Space"):
                out.append(node)
                inlines[i + 1] = {"t": "Str", "c": "×"}
                i += 1
                continue
            if join:
                out[-1] = {"t": "Str", "c": before + NBSP + after}
                i += 2
                continue
        out.append(node)
        i += 1
    inlines[:] = out


# --------------------------------------------------------------------------- tables

def _cells(table: dict) -> list[list[str]]:
    """The text of every row of a table (head, bodies, foot), one string per cell."""
    _attr, _caption, _specs, head, bodies, foot = table["c"]
    rows = list(head[1])
    for body in bodies:
        rows.extend(body[2])
        rows.extend(body[3])
    rows.extend(foot[1])
    return [[stringify(cell[4]) for cell in row[1]] for row in rows]


def _unbreakable_width(text: str, size: float) -> float:
    # only ordinary spaces break: str.split() would also split at the no-break spaces
    return max((text_width_pt(word, size) for word in re.split(r"[ \t\n]+", text)), default=0.0)


def column_widths(rows: list[list[str]], available_pt: float, size: float = TABLE_FONT_PT) -> tuple[list[float], float]:
    """Column widths (fractions of ``available_pt``) computed from the cells' text, and the total of
    the columns' unbreakable minimum widths (points). A column gets at least its longest unbreakable
    word or estimate; the space left is shared in proportion to what each column needs to show its
    widest cell on one line."""
    ncol = max((len(r) for r in rows), default=0)
    if not ncol:
        return [], 0.0
    natural = [CELL_PADDING_PT] * ncol
    minimum = [CELL_PADDING_PT] * ncol
    for row in rows:
        for j, text in enumerate(row[:ncol]):
            natural[j] = max(natural[j], text_width_pt(text, size) + CELL_PADDING_PT)
            minimum[j] = max(minimum[j], _unbreakable_width(text, size) + CELL_PADDING_PT)
    total_min = sum(minimum)
    if sum(natural) <= available_pt:
        widths = natural
    elif total_min >= available_pt:
        widths = minimum
    else:
        spare = available_pt - total_min
        want = [n - m for n, m in zip(natural, minimum)]
        share = sum(want) or 1.0
        # a column's share is capped at what its widest cell needs; the rest goes to the others
        widths = list(minimum)
        open_cols = [j for j in range(ncol) if want[j] > 0]
        while spare > 1e-6 and open_cols:
            share = sum(want[j] - (widths[j] - minimum[j]) for j in open_cols)
            step = spare
            for j in list(open_cols):
                need = want[j] - (widths[j] - minimum[j])
                give = min(need, step * need / share) if share else 0
                widths[j] += give
                spare -= give
                if need - give <= 1e-6:
                    open_cols.remove(j)
            if step - spare <= 1e-6:
                break
    scale = max(sum(widths), available_pt) if sum(widths) > available_pt else available_pt
    return [w / scale for w in widths], total_min


def is_wide(rows: list[list[str]], size: float = TABLE_FONT_PT) -> bool:
    """Whether a table needs a landscape page: its columns' unbreakable minima exceed the portrait
    text width, or its cells on one line need more than 1.6 times it while fitting landscape."""
    _, total_min = column_widths(rows, PORTRAIT_WIDTH_PT, size)
    return total_min > PORTRAIT_WIDTH_PT * 0.98


#: Word has no Libertinus: its sans-serif faces (Calibri, or LibreOffice's substitutes) run wider
DOCX_MEASURE_PT = 10.5


def _fit_table(table: dict, wide: bool, size: float = TABLE_FONT_PT) -> None:
    rows = _cells(table)
    available = LANDSCAPE_WIDTH_PT if wide else PORTRAIT_WIDTH_PT
    fractions, _ = column_widths(rows, available, size)
    specs = table["c"][2]
    for j, spec in enumerate(specs):
        if j < len(fractions):
            spec[1] = {"t": "ColWidth", "c": round(fractions[j], 4)}


# --------------------------------------------------------------------------- the pass

def _raw(fmt: str, text: str) -> dict:
    return {"t": "RawBlock", "c": [fmt, text]}


def _classes(node: dict) -> list[str]:
    return node["c"][0][1] if _is(node, "Div") else []


def _process_blocks(blocks: list, fmt: str, state: dict) -> list:
    out: list = []
    splice = state.get("splice")
    for block in blocks:
        if splice is not None and _is(block, "RawBlock") and block["c"][0] == splice[0]:
            out.extend(splice[1](block, state))     # a table laid out elsewhere (see lay_out)
            continue
        if _is(block, "Div"):
            block["c"][1] = _process_blocks(block["c"][1], fmt, state)
            classes = _classes(block)
            if "notebook-link" in classes and fmt != "html":
                continue
            if "table-notes" in classes:
                if fmt == "typst":
                    out.append(_raw("typst", "#block(above: 0.5em, below: 1.2em)[#set text(size: 7.5pt)\n#set align(left)\n"
                                             "#set par(justify: false, leading: 0.5em)"))
                    out.extend(block["c"][1])
                    out.append(_raw("typst", "]"))
                    continue
                if fmt == "docx":
                    attrs = [kv for kv in block["c"][0][2] if kv[0] != "custom-style"]
                    block["c"][0][2] = attrs + [["custom-style", "Table Note"]]
            if "table-block" in classes:
                tables = [b for b in block["c"][1] if _is(b, "Table")]
                wide = any(is_wide(_cells(t)) for t in tables)
                size = DOCX_MEASURE_PT if fmt == "docx" else TABLE_FONT_PT
                for table in tables:
                    _fit_table(table, wide and fmt in ("typst", "docx"), size)
                if fmt == "typst":
                    rows = sum(len(_cells(t)) for t in tables)
                    # a table that fits a page stays whole, with its caption and notes; a longer
                    # one breaks across pages and repeats its header row
                    closing = "]"
                    if rows <= KEEP_TOGETHER_ROWS and not wide:
                        # it floats to the top or bottom of a page, as figures do, so that the text
                        # fills the page instead of leaving a gap where the table did not fit
                        opening = FLOAT_OPENING + "#block(breakable: false, width: 100%)["
                        closing = "]]"
                    elif rows <= KEEP_TOGETHER_ROWS:
                        opening = "#block(breakable: false, width: 100%)["
                    else:   # helpers.build.render.finish_typst adds "(continued)" to the repeated header
                        state["long"] += 1
                        opening = f'#[#metadata("long-table") <{LONG_TABLE_LABEL}-{state["long"]}>'

                    if wide:
                        opening = "#page(flipped: true)[" + opening
                    out.append(_raw("typst", opening))
                    out.extend(block["c"][1])
                    out.append(_raw("typst", closing + "]" if wide else closing))
                    continue
                if wide and fmt == "docx":
                    for table in tables:
                        _fit_table(table, True, size)
                    out.append(_raw("openxml", _docx_section_break(False, state["header"])))
                    out.append(block)
                    out.append(_raw("openxml", _docx_section_break(True, state["header"])))
                    continue
            out.append(block)
        elif _is(block, "Table"):
            _fit_table(block, False, DOCX_MEASURE_PT if fmt == "docx" else TABLE_FONT_PT)
            out.append(block)
        elif _is(block, "Figure") and fmt == "typst":
            # a figure floats to the top of a page (inside place(), so that its label, and the list of
            # figures, give the page where it lands)
            out.extend([_raw("typst", FLOAT_OPENING), block, _raw("typst", "]")])
        else:
            out.append(block)
    return out


def _docx_section_break(landscape: bool, header_id: str | None) -> str:
    """An empty paragraph that ends a Word section: portrait A4 before a wide table, landscape
    after it (the section properties of a paragraph describe the section it closes)."""
    from helpers.build.docx_style import FOOTER_REL_ID

    header = (f'<w:headerReference w:type="default" r:id="{header_id}" />' if header_id else "") + \
        f'<w:footerReference w:type="default" r:id="{FOOTER_REL_ID}" />'
    size = '<w:pgSz w:w="16838" w:h="11906" w:orient="landscape" />' if landscape else \
        '<w:pgSz w:w="11906" w:h="16838" />'
    margins = ('<w:pgMar w:top="1247" w:right="1361" w:bottom="1247" w:left="1361" w:header="680" '
               'w:footer="680" w:gutter="0" />' if landscape else
               '<w:pgMar w:top="1361" w:right="1247" w:bottom="1361" w:left="1247" w:header="680" '
               'w:footer="680" w:gutter="0" />')
    return f"<w:p><w:pPr><w:sectPr>{header}{size}{margins}</w:sectPr></w:pPr></w:p>"


def _figures_for_word(node: Any, media_exists) -> None:
    if isinstance(node, list):
        for child in node:
            _figures_for_word(child, media_exists)
    elif isinstance(node, dict):
        if node.get("t") == "Image":
            target = node["c"][2]
            if target[0].endswith(".svg"):
                png = target[0][:-4] + ".png"
                if media_exists(png):
                    target[0] = png
        for value in node.values():
            if isinstance(value, (list, dict)):
                _figures_for_word(value, media_exists)


def prepare(document: dict, fmt: str, media_exists=lambda path: False, docx_header: str | None = None) -> dict:
    """A copy of pandoc's JSON ``document`` typeset for ``fmt`` ("html", "docx" or "typst").

    ``docx_header``: the relationship id of the Word running header (repeated in the section
    breaks around landscape tables), None when the document has no header.

    The same as :func:`protect` on a copy, then :func:`lay_out`: the renderer protects the document
    once and lays out a copy of it per format."""
    return lay_out(protect(copy.deepcopy(document)), fmt, media_exists, docx_header)


def protect(document: dict) -> dict:
    """In place, and returned: the part of :func:`prepare` that is the same for every format (Unicode
    symbols and no-break joins in every list of inlines of the body, :func:`protect_inlines`)."""
    for inlines in list(_inline_lists(document["blocks"])):
        protect_inlines(inlines)
    return document


def lay_out(document: dict, fmt: str, media_exists=lambda path: False, docx_header: str | None = None,
            splice: tuple | None = None) -> dict:
    """In place, and returned: the part of :func:`prepare` that depends on ``fmt`` (column widths,
    landscape pages, table notes and blocks, notebook links, Word's figures), on a document that
    :func:`protect` has already been applied to (once: it is not idempotent).

    ``splice``: ``(raw format, function)``: a raw block of that format is replaced by
    ``function(block, state)``, the blocks it stands for laid out at that point of the pass
    (:func:`lay_out_block`; ``state`` holds the count of long tables so far, which the function
    updates), so a table kept from an earlier render is not laid out again."""
    document["blocks"] = _process_blocks(document["blocks"], fmt, {"long": 0, "header": docx_header,
                                                                    "splice": splice})
    if fmt == "docx":
        _figures_for_word(document["blocks"], media_exists)
    return document


def lay_out_block(block: dict, fmt: str, state: dict) -> list:
    """:func:`lay_out` of one top-level (protected) ``block`` of a document without images, at the
    point ``state`` of the pass (``{"long": long tables so far, "header": docx_header, ...}``, updated):
    the blocks it becomes (a table block may become several: a landscape page's section breaks,
    Typst's opening and closing). The renderer lays out each table once and keeps the result."""
    return _process_blocks([block], fmt, state)
