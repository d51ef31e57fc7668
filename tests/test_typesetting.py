"""Typesetting: column widths, unbreakable estimates, the Word reference document, the Quarto options,
citations; and, on the built supplement (slow), overlapping words in the PDF, the DOCX structure and
program identifiers in the text of the three documents."""
from __future__ import annotations

import ast
import io
import json
import re
import zipfile
from pathlib import Path

import nbformat
import pytest
import yaml

from helpers.build import docx_style, typeset
from helpers.config import PROJECT_ROOT

SCHEMA = json.loads((PROJECT_ROOT / "tests" / "quarto_schema" / "allowed_keys.json").read_text())


# --------------------------------------------------------------------------- typeset (fast)

def _para(text: str) -> list:
    inlines = []
    for i, word in enumerate(text.split(" ")):
        if i:
            inlines.append({"t": "Space"})
        inlines.append({"t": "Str", "c": word})
    return inlines


@pytest.mark.parametrize("text, joined", [
    ("median 10.8 (8.0–12.3) months", "10.8\u00a0(8.0–\u206012.3)"),
    ("HR 0.53 (0.34–0.83), P = 0.005", "P\u00a0=\u00a00.005"),
    ("with P <0.001 overall", "P\u00a0<0.001"),
    ("median 3.2 [1.9, 4.4] cm", "3.2\u00a0[1.9,\u00a04.4]"),
    ("n 87 (100.0) of", "87\u00a0(100.0)"),
    ("difference 12.1 (-4.0 to 28.2)", "12.1\u00a0(\u22124.0"),
])
def test_an_estimate_and_its_interval_and_a_p_value_cannot_break_across_lines(text, joined):
    inlines = _para(text)
    typeset.protect_inlines(inlines)
    assert joined in typeset.stringify(inlines)


def test_ascii_relations_and_a_lone_x_become_unicode_symbols():
    inlines = _para("ages <= 60 and >= 70, HR x log(t)")
    typeset.protect_inlines(inlines)
    text = typeset.stringify(inlines)
    assert "≤" in text and "≥" in text and " × " in text and "<=" not in text
    minus = _para("SMD -0.12 (-4.0 to 2.1), stage T1-2, 2014-2023")
    typeset.protect_inlines(minus)
    text = typeset.stringify(minus)
    assert "\u22120.12" in text and "(\u22124.0" in text and "T1-2" in text and "\u2212" not in text.split("stage")[1]


def test_column_widths_give_each_column_at_least_its_longest_unbreakable_estimate():
    rows = [["Variable", "HR (95% CI)", "P"],
            ["A very long variable label that may wrap over two lines", "10.8\u00a0(8.0–\u206012.3)", "<0.001"]]
    fractions, _ = typeset.column_widths(rows, typeset.PORTRAIT_WIDTH_PT)
    width = typeset.PORTRAIT_WIDTH_PT
    assert fractions[1] * width >= typeset.text_width_pt("10.8\u00a0(8.0–\u206012.3)")
    assert fractions[2] * width >= typeset.text_width_pt("<0.001")
    assert sum(fractions) <= 1.0001


def test_a_table_too_wide_for_a_portrait_page_is_set_landscape():
    row = ["1.23\u00a0(0.45–\u20606.78)"] * 9
    assert typeset.is_wide([row, row])
    assert not typeset.is_wide([row[:4], row[:4]])


def _table_block(rows: int, columns: int = 3) -> dict:
    cell = lambda text: [["", [], []], {"t": "AlignDefault"}, 1, 1, [{"t": "Plain", "c": _para(text)}]]
    body_rows = [[["", [], []], [cell("1.2") for _ in range(columns)]] for _ in range(rows)]
    table = {"t": "Table", "c": [["", [], []], [None, []], [[{"t": "AlignDefault"}, {"t": "ColWidthDefault"}]] * columns,
                                 [["", [], []], []], [[["", [], []], 0, [], body_rows]], [["", [], []], []]]}
    return {"t": "Div", "c": [["", ["table-block"], []], [table]]}


def _typst_of(block: dict) -> str:
    out = typeset._process_blocks([block], "typst", {"long": 0, "header": False})
    return "".join(b["c"][1] for b in out if b.get("t") == "RawBlock")


def test_a_table_that_fits_a_page_floats_and_a_long_one_breaks_with_its_header():
    short = _typst_of(_table_block(5))
    assert short.startswith(typeset.FLOAT_OPENING) and "breakable: false" in short
    long = _typst_of(_table_block(typeset.KEEP_TOGETHER_ROWS + 5))
    assert "#place(" not in long and "long-table" in long


def test_floats_stay_in_their_section_and_formulas_are_math():
    from helpers.build import render

    assert "#show heading.where(level: 1): it => { place.flush(); it }" in render.TYPST_HEADER
    assert "#show heading.where(level: 2): it => { place.flush(); it }" in render.TYPST_HEADER
    figure = {"t": "Figure", "c": [["fig-x", [], []], [None, []], []]}
    out = typeset._process_blocks([figure], "typst", {"long": 0, "header": False})
    assert out[0]["c"][1] == typeset.FLOAT_OPENING and out[1] is figure   # the label lands with the float
    assert render.finish_typst("(REMARK)'. Journal") == "(REMARK)\u2019. Journal"
    prose = "".join(p.read_text(encoding="utf-8") for p in sorted((PROJECT_ROOT / "sections").glob("*methods.qmd")))
    assert "$\\sqrt{" in prose and "√(" not in prose and "^2^" not in prose   # TeX math, not ASCII or ^sup^


# --------------------------------------------------------------------------- Word (fast)

@pytest.fixture(scope="module")
def reference_docx():
    import pypandoc

    return zipfile.ZipFile(io.BytesIO(docx_style.reference_docx(pypandoc.get_pandoc_path(), "SYNTHETIC DATA")))


def test_the_reference_document_is_a4_with_a_running_header_and_a_ruled_table_style(reference_docx):
    document = reference_docx.read("word/document.xml").decode()
    assert re.search(r'<w:pgSz (?=[^>]*w:w="11906")(?=[^>]*w:h="16838")', document)
    assert f'r:id="{docx_style.HEADER_REL_ID}"' in document
    assert "SYNTHETIC DATA" in reference_docx.read("word/header1.xml").decode()
    styles = reference_docx.read("word/styles.xml").decode()
    assert "<w:tblBorders>" in styles and "<w:tblCellMar>" in styles and 'w:styleId="TableNote"' in styles
    assert "header1.xml" in reference_docx.read("word/_rels/document.xml.rels").decode()
    assert '<w:sz w:val="22" />' in styles and 'w:val="en-GB"' in styles   # body 11 pt, British English
    assert f'w:footerReference w:type="default" r:id="{docx_style.FOOTER_REL_ID}"' in document
    assert "PAGE" in reference_docx.read("word/footer1.xml").decode()       # page numbers
    assert re.search(r'w:styleId="Bibliography">.*?<w:sz w:val="18" />', styles, re.S)   # references 9 pt


def test_caption_numbers_become_seq_fields():
    xml = ('<w:p><w:pPr><w:pStyle w:val="TableCaption" /></w:pPr><w:r><w:t xml:space="preserve">'
           'Table 3: Patients.</w:t></w:r></w:p>')
    out = docx_style._seq_fields(xml)
    assert '<w:fldSimple w:instr=" SEQ Table \\* ARABIC "><w:r><w:t>3</w:t></w:r></w:fldSimple>' in out
    assert out.count("Table") == 3 and "Patients." in out


def test_document_properties_lose_local_paths():
    xml = ('<Properties><property fmtid="x" pid="2" name="bibliography"><vt:lpwstr>/work/main/references.bib'
           '</vt:lpwstr></property><property fmtid="x" pid="3" name="lang"><vt:lpwstr>en-GB</vt:lpwstr>'
           '</property></Properties>')
    out = docx_style._clean_properties(xml)
    assert "/work" not in out and "en-GB" in out


# --------------------------------------------------------------------------- Quarto options (fast)

def _check_keys(options: dict, allowed: set[str], where: str) -> list[str]:
    return [f"{where}: '{key}' is not a Quarto option" for key in options if key not in allowed]


def test_quarto_project_options_are_in_quartos_schema():
    config = yaml.safe_load((PROJECT_ROOT / "_quarto.yml").read_text())
    document = set(SCHEMA["document"])
    problems = _check_keys(config, set(SCHEMA["top-level-project"]) | document | {"format", "execute"}, "_quarto.yml")
    problems += _check_keys(config.get("project", {}), set(SCHEMA["project"]), "project")
    problems += _check_keys(config.get("manuscript", {}), set(SCHEMA["manuscript"]), "manuscript")
    for entry in config.get("manuscript", {}).get("notebooks", []):
        if isinstance(entry, dict):
            problems += _check_keys(entry, set(SCHEMA["notebook-view"]), "manuscript.notebooks")
    problems += _check_keys(config.get("crossref", {}), set(SCHEMA["crossref"]), "crossref")
    problems += _check_keys(config.get("execute", {}), document | set(SCHEMA["cell"]), "execute")
    for fmt, options in (config.get("format") or {}).items():
        for key in options or {}:
            formats = SCHEMA["document"].get(key)
            if formats is None:
                problems.append(f"format.{fmt}: '{key}' is not a Quarto option")
            elif f"!{fmt}" in formats or (formats and not any(f.startswith(("!", "$")) for f in formats)
                                           and fmt not in formats):
                problems.append(f"format.{fmt}: '{key}' does not apply to {fmt} ({formats})")
    assert not problems, "\n".join(problems)


def test_the_articles_front_matter_uses_quarto_options_only():
    text = (PROJECT_ROOT / "report.qmd").read_text()
    front = yaml.safe_load(text.split("---\n", 2)[1])
    assert not _check_keys(front, set(SCHEMA["document"]), "report.qmd")


def test_every_cell_option_of_the_notebooks_is_a_quarto_cell_option():
    from helpers.build.render import parse_cell_options

    allowed = set(SCHEMA["cell"]) | set(SCHEMA["document"])
    problems = []
    for path in sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                problems += _check_keys(parse_cell_options(cell.source), allowed, path.name)
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- citations (fast)

def _bib_keys() -> set[str]:
    return set(re.findall(r"^@\w+\{([^,\s]+),", (PROJECT_ROOT / "references.bib").read_text(), re.M))


def _prose_files() -> list[Path]:
    return [PROJECT_ROOT / "report.qmd", *sorted((PROJECT_ROOT / "sections").glob("*.qmd"))]


_CITE_RE = re.compile(r"(?<![\w.@])-?@([A-Za-z][\w:.#$%&+?<>~/-]*[\w])")


def test_every_cited_key_resolves_in_references_bib():
    keys = _bib_keys()
    missing = []
    for path in _prose_files():
        text = re.sub(r"<!--.*?-->", "", path.read_text(), flags=re.S)
        text = re.sub(r"\{\{<.*?>\}\}", "", text)
        for key in _CITE_RE.findall(text):
            if not key.startswith(("fig-", "tbl-", "sec-", "eq-")) and key not in keys:
                missing.append(f"{path.name}: @{key}")
    assert not missing, "cited but not in references.bib: " + ", ".join(missing)


def test_corporate_authors_are_braced_so_they_stay_one_name():
    text = (PROJECT_ROOT / "references.bib").read_text()
    bad = []
    for author in re.findall(r"^\s*author\s*=\s*\{(.*)\},?\s*$", text, re.M):
        for name in re.split(r"\s+and\s+", author):
            bare = name.strip()
            if not bare.startswith("{") and "," not in bare and len(bare.split()) > 2 and bare != "others":
                bad.append(bare)
    assert not bad, f"unbraced corporate authors: {bad}"


def _prose_literals(path: Path) -> list[str]:
    """String constants of a module that are not docstrings or comments (what can reach the text)."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_no_author_year_citation_is_typed_in_the_prose_the_helpers_write():
    pattern = re.compile(r"\(([A-Z][a-zA-Z-]+)( et al\.| and [A-Z][a-zA-Z-]+)?,? (19|20)\d\d[a-z]?[;)]")
    found = []
    for path in sorted((PROJECT_ROOT / "helpers" / "report").rglob("*.py")):
        for literal in _prose_literals(path):
            for match in pattern.finditer(literal):
                found.append(f"{path.relative_to(PROJECT_ROOT)}: {match.group(0)}")
    assert not found, "citations typed in code (cite from references.bib instead): " + "; ".join(found)


# --------------------------------------------------------------------------- the built documents (slow)

def test_no_word_of_the_pdf_crosses_a_page_edge_or_overlaps_another(built_output):
    """Words and their boxes from report.pdf (pdfplumber): none beyond the page, none overprinting
    another (two characters whose boxes share more than half of the smaller one's area)."""
    pdfplumber = pytest.importorskip("pdfplumber")
    outside, overlaps = [], []
    with pdfplumber.open(built_output / "report.pdf") as pdf:
        for number, page in enumerate(pdf.pages, 1):
            words = page.extract_words(use_text_flow=False, keep_blank_chars=False, x_tolerance=1.5)
            assert words or number > 1
            for w in words:
                if w["x0"] < -0.5 or w["top"] < -0.5 or w["x1"] > page.width + 0.5 or w["bottom"] > page.height + 0.5:
                    outside.append((number, w["text"]))
            # a radical or a large operator of a formula encloses its operand by design
            chars = sorted((c for c in page.chars if c["text"].strip() and c["text"] not in "√∑∏∫"),
                           key=lambda c: (c["x0"], c["top"]))
            for i, a in enumerate(chars):
                for b in chars[i + 1:]:
                    if b["x0"] >= a["x1"] - 0.3:
                        break
                    dx = min(a["x1"], b["x1"]) - max(a["x0"], b["x0"])
                    dy = min(a["bottom"], b["bottom"]) - max(a["top"], b["top"])
                    if dx <= 0.3 or dy <= 0.3:
                        continue
                    smaller = min((a["x1"] - a["x0"]) * (a["bottom"] - a["top"]),
                                  (b["x1"] - b["x0"]) * (b["bottom"] - b["top"]))
                    if dx * dy > smaller / 2:   # kerned pairs (T r, A v) overlap less
                        overlaps.append((number, a["text"], b["text"], round(a["x0"]), round(a["top"])))
    assert not outside and not overlaps, (f"words beyond the page edge: {outside[:10]}; "
                                          f"overprinted words (page, word, word): {overlaps[:10]}")


def test_the_lists_of_tables_and_figures_give_the_page_where_each_one_lands(built_output):
    """Floats move: the page printed in the lists is the page that carries the caption, one line each."""
    from pypdf import PdfReader

    pages = [page.extract_text() or "" for page in PdfReader(str(built_output / "report.pdf")).pages]
    lists = "\n".join(pages[:3]).split("\nTables\n", 1)[-1]
    tables, _, figures = lists.partition("\nFigures\n")
    checked = 0
    for kind, listed in (("Table", tables), ("Figure", figures)):
        for number, page in re.findall(r"^(\d+) [^\n]*?\.{3,}\s*(\d+)\s*$", listed, re.M):
            where = [i + 1 for i, text in enumerate(pages[2:], 2) if re.search(rf"^{kind} {number}:", text, re.M)]
            assert where and where[0] == int(page), f"{kind} {number}: listed on page {page}, printed on {where}"
            checked += 1
    assert checked >= 40, f"only {checked} list entries on one line each"


def test_the_word_document_is_a4_with_header_seq_fields_widths_and_clean_properties(built_output):
    with zipfile.ZipFile(built_output / "report.docx") as docx:
        document = docx.read("word/document.xml").decode()
        names = docx.namelist()
        custom = docx.read("docProps/custom.xml").decode() if "docProps/custom.xml" in names else ""
        headers = "".join(docx.read(n).decode() for n in names if re.match(r"word/header\d*\.xml", n))
    assert re.search(r'<w:pgSz (?=[^>]*w:w="11906")(?=[^>]*w:h="16838")', document)
    assert "SYNTHETIC DATA" in headers
    assert document.count('SEQ Table') >= 10 and document.count('SEQ Figure') >= 3
    assert "<w:tblGrid>" in document and '<w:tblW w:type="pct"' in document
    assert "/work" not in custom and "/tmp" not in custom and str(PROJECT_ROOT) not in custom
    assert "<m:oMath>" in document        # formulas are Word equations


def test_formulas_are_typeset_as_math_in_every_document(built_output):
    html = (built_output / "report.html").read_text(encoding="utf-8")
    assert html.count("<math") >= 5
    texts = _document_texts(built_output)
    for name, text in texts.items():
        assert "\\sqrt" not in text and "\\sum" not in text and "$\\" not in text, name


def _document_texts(output: Path) -> dict[str, str]:
    from pypdf import PdfReader

    texts = {"report.pdf": "\n".join(page.extract_text() or "" for page in PdfReader(str(output / "report.pdf")).pages)}
    html = (output / "report.html").read_text(encoding="utf-8")
    html = re.sub(r"<(script|style|svg|annotation)\b.*?</\1>", " ", html, flags=re.S | re.I)  # TeX source of MathML
    html = re.sub(r'(src|href|id|class|alt)="[^"]*"', " ", html)
    texts["report.html"] = re.sub(r"<[^>]+>", " ", html)
    with zipfile.ZipFile(output / "report.docx") as docx:
        texts["report.docx"] = " ".join(re.findall(r"<w:t[^>]*>([^<]*)</w:t>", docx.read("word/document.xml").decode()))
    return texts


def program_identifiers() -> set[str]:
    """Strings that betray program output: the dictionary's names with an underscore, the core
    columns, the notebooks' constants and the warning classes of helpers/."""
    from helpers.data.load import load_study

    names = {"patient_id", "start_date", "last_followup_date", "death_date", "progression_date",
             "last_assessment_date", "best_response", "os_months", "os_event", "pfs_months", "pfs_event"}
    dictionary = yaml.safe_load((PROJECT_ROOT / "data" / "dictionary.yaml").read_text())
    for block in ("covariates", "groupings", "exposures"):
        names |= {n for n in (dictionary.get(block) or {}) if "_" in n}
    for path in sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            try:
                tree = ast.parse("\n".join(l for l in cell.source.splitlines() if not l.startswith(("%", "!"))))
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id.isupper() \
                        and len(node.id) > 3:
                    names.add(node.id)
    for path in sorted((PROJECT_ROOT / "helpers").rglob("*.py")):
        names |= set(re.findall(r"^class (\w+Warning)\b", path.read_text(), re.M))
    return names


def test_no_program_identifier_reaches_the_text_of_the_documents(built_output):
    identifiers = program_identifiers()
    found = []
    for name, text in _document_texts(built_output).items():
        for identifier in sorted(identifiers):
            for match in re.finditer(rf"(?<![\w/]){re.escape(identifier)}(?!\w)", text):
                found.append(f"{name}: {identifier} in '…{text[max(0, match.start() - 60):match.end() + 40]}…'")
                break
        for pattern in (r"\w\(s\)", r"\d\.\de-0\d", r"\[<? ?\d+\]"):
            for match in re.finditer(pattern, text):
                found.append(f"{name}: '{match.group(0)}' in '…{text[max(0, match.start() - 60):match.end() + 40]}…'")
                break
    assert not found, "program output in the document:\n" + "\n".join(found)
