"""The shortcuts of a build after a prose-only edit give what the plain steps give (issue 16, item 4).

* pandoc reads the prose and the table blocks side by side (helpers.build.render.read_markdown): the
  joined document equals pandoc's document of the whole Markdown;
* the typesetting shared by every format is done once (helpers.build.typeset.protect, then lay_out
  per format): equal to typeset.prepare per format;
* a notebook's HTML page is copied from the last render when the notebook did not change;
* the study section of results.json is written without importing pandas;
* the staging copy of the last output keeps the figures and the notebook pages.

No test here times anything: scripts/benchmark_render.py measures the speed.
"""
from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from helpers.build import render, typeset
from helpers.config import PROJECT_ROOT

BIB = """@article{kaplan1958, author = {Kaplan, E. L. and Meier, Paul},
  title = {Nonparametric estimation from incomplete observations},
  journal = {J Am Stat Assoc}, year = {1958}, volume = {53}, pages = {457--481}}
@article{cox1972, author = {Cox, D. R.}, title = {Regression models and life-tables},
  journal = {J R Stat Soc B}, year = {1972}, volume = {34}, pages = {187--220}}
"""


def _table(label: str, caption: str, rows: list[str], notes: str = "") -> str:
    """A table block as helpers.build.render.embed_markdown writes it."""
    block = ["::: {.table-block}", f"Table: {caption} {{#{label}}}", "", "| Characteristic | A | B |",
             "|:---|---:|---:|", *rows, ""]
    if notes:
        block += ["::: {.table-notes}", notes, ":::", ""]
    return "\n".join(block + [":::"])


MARKDOWN = "\n\n".join([
    "---\ntitle: \"Demo\"\n---",
    "# 1 Methods {#sec-methods}",
    "Survival was estimated as by @kaplan1958 and compared with Cox models [@cox1972, p. 190]; "
    "\"quoted\" text -- and P \\<0.05.",
    _table("tbl-one", "Table 1: Baseline characteristics.",
           ["| Age, median [IQR] | 61 [55, 68] | 60 [54, 67] |", "| P value | \\<0.001 | 0.03 |",
            "| *Emphasis* and `code` | 1 -- 2 | x |"],
           "Counts are n (%). \"Quoted\" note with a [link](https://example.org)."),
    "## 1.1 Results {#sec-results}",
    "As Table 1 shows.\n\n::: {.notebook-link}\n[Source: notebook 01](notebooks/01.html)\n:::",
    _table("tbl-cites", "Table 2: A note that cites.", ["| HR | 0.8 | 1 |"], "As in [@cox1972]."),
    _table("tbl-heading-ref", "Table 3: A note naming a heading.", ["| a | 1 | 2 |"], "See [1.1 Results]."),
    "Text right above a table\n" + _table("tbl-glued", "Table 4: Glued to a paragraph.", ["| a | 1 | 2 |"]),
    "::: {.callout}\n\n" + _table("tbl-nested", "Table 5: Inside another div.", ["| a | 1 | 2 |"]) + "\n\n:::",
    "```\n" + _table("tbl-code", "Table 6: In a code block.", ["| a | 1 | 2 |"]) + "\n```",
    _table("tbl-last", "Table 7: The last one.", ["| b | 3 | 4 |", "| c | 5 | 6 |"]),
    "# References {.unnumbered}",
]) + "\n"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    (tmp_path / "references.bib").write_text(BIB, encoding="utf-8")
    path = tmp_path / "report.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    return path


def _read_whole(path: Path) -> dict:
    out = path.with_name("whole.json")
    render._run([render._pandoc_path(), path.name, *render._pandoc_reader_args(path.parent), "--to=json",
                 "-o", out.name], path.parent)
    return json.loads(out.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- reading in two parts

def test_only_table_blocks_that_read_the_same_alone_are_taken_out(source):
    prose, blocks = render.split_table_blocks(source.read_text(encoding="utf-8"))
    labels = [b.split("{#", 1)[1].split("}", 1)[0] for b in blocks]
    # cites, names a heading, glued to a paragraph, in a code block: stay in the prose
    assert labels == ["tbl-one", "tbl-nested", "tbl-last"]
    assert prose.count(f"```{{={render.SPLICE_FORMAT}}}") == 3
    assert "tbl-cites" in prose and "tbl-heading-ref" in prose and "tbl-glued" in prose and "tbl-code" in prose


def test_the_two_readings_joined_equal_pandocs_reading_of_the_whole(source):
    whole = _read_whole(source)
    joined = render.read_markdown(render._pandoc_path(), source, source.parent, source.parent)
    assert joined == whole
    assert (source.parent / "report-tables.md").exists()      # it was read in two parts
    # seven blocks written, five read as table blocks: one is glued to a paragraph, one is in code
    assert json.dumps(joined).count('"table-block"') == 5


@pytest.mark.parametrize("extra", ["A note.[^1]\n\n[^1]: The footnote.", "[ref]: https://example.org",
                                   "\\newcommand{\\x}{y}", "Setext heading\n=============="])
def test_a_document_with_document_wide_definitions_is_read_whole(source, extra):
    text = source.read_text(encoding="utf-8") + "\n" + extra + "\n"
    assert render.split_table_blocks(text) is None
    source.write_text(text, encoding="utf-8")
    assert render.read_markdown(render._pandoc_path(), source, source.parent, source.parent) == _read_whole(source)
    assert not (source.parent / "report-tables.md").exists()


def test_a_splice_that_does_not_match_is_refused():
    table = {"t": "Div", "c": [["", ["table-block"], []], []]}
    raw = {"t": "RawBlock", "c": [render.SPLICE_FORMAT, "0"]}
    assert render.splice_table_blocks({"blocks": [raw]}, {"blocks": [table]}, 1) == {"blocks": [table]}
    assert render.splice_table_blocks({"blocks": [raw, raw]}, {"blocks": [table]}, 1) is None     # twice
    assert render.splice_table_blocks({"blocks": []}, {"blocks": [table]}, 1) is None             # missing
    assert render.splice_table_blocks({"blocks": [raw]}, {"blocks": [table, table]}, 1) is None   # count
    assert render.splice_table_blocks({"blocks": [raw]}, {"blocks": [{"t": "Para", "c": []}]}, 1) is None


# --------------------------------------------------------------------------- typesetting once

@pytest.mark.parametrize("fmt", ["typst", "html", "docx"])
def test_protect_once_then_lay_out_equals_prepare(source, fmt):
    document = _read_whole(source)
    exists = lambda rel: True   # noqa: E731
    expected = typeset.prepare(document, fmt, media_exists=exists, docx_header="rIdX")
    protected = typeset.protect(copy.deepcopy(document))
    got = typeset.lay_out(json.loads(json.dumps(protected)), fmt, media_exists=exists, docx_header="rIdX")
    assert got == expected
    assert document == _read_whole(source)      # prepare leaves its argument as it was


# --------------------------------------------------------------------------- notebook pages

def _executed(text: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('hello')")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    nb.cells = [nbformat.v4.new_markdown_cell("# A notebook"), cell]
    return nb


def test_a_notebook_page_is_copied_when_its_notebook_did_not_change(tmp_path, monkeypatch):
    executed = tmp_path / "notebooks"
    executed.mkdir()
    nbformat.write(_executed("one\n"), str(executed / "01-a.ipynb"))
    nbformat.write(_executed("two\n"), str(executed / "02-b.ipynb"))
    build = render.BuildInfo()
    first = tmp_path / "first"
    pages = render.write_notebook_pages(executed, first, build)
    assert [p.name for p in pages] == ["01-a.html", "02-b.html"]
    record = render.read_pages_record(first)
    assert set(record) == {"01-a.html", "02-b.html"}

    import nbconvert

    converted = []
    real = nbconvert.HTMLExporter

    class Counting(real):
        def from_notebook_node(self, nb, *args, **kwargs):
            converted.append(nb.cells[1].outputs[0].text)
            return super().from_notebook_node(nb, *args, **kwargs)

    monkeypatch.setattr(nbconvert, "HTMLExporter", Counting)
    second = tmp_path / "second"
    render.write_notebook_pages(executed, second, build, previous=first)
    assert converted == []      # nothing converted: both copied
    for name in record:
        assert (second / name).read_bytes() == (first / name).read_bytes()

    nbformat.write(_executed("three\n"), str(executed / "02-b.ipynb"))     # re-executed, new output
    third = tmp_path / "third"
    render.write_notebook_pages(executed, third, build, previous=second)
    assert converted == ["three\n"]
    assert (third / "01-a.html").read_bytes() == (first / "01-a.html").read_bytes()
    assert "three" in (third / "02-b.html").read_text(encoding="utf-8")
    fresh = tmp_path / "fresh"
    render.write_notebook_pages(executed, fresh, build)
    assert (fresh / "02-b.html").read_bytes() == (third / "02-b.html").read_bytes()

    only_a = render.BuildInfo(notebooks=frozenset({"01-a.ipynb"}))
    fourth = tmp_path / "fourth"
    assert [p.name for p in render.write_notebook_pages(executed, fourth, only_a, previous=third)] == ["01-a.html"]
    assert set(render.read_pages_record(fourth)) == {"01-a.html"}


def test_a_recorded_page_that_is_missing_is_made_again(tmp_path):
    executed = tmp_path / "notebooks"
    executed.mkdir()
    nbformat.write(_executed("one\n"), str(executed / "01-a.ipynb"))
    first = tmp_path / "first"
    render.write_notebook_pages(executed, first, render.BuildInfo())
    expected = (first / "01-a.html").read_bytes()
    (first / "01-a.html").unlink()
    second = tmp_path / "second"
    render.write_notebook_pages(executed, second, render.BuildInfo(), previous=first)
    assert (second / "01-a.html").read_bytes() == expected


# --------------------------------------------------------------------------- results without pandas

def test_the_study_section_is_written_without_importing_pandas(tmp_path):
    code = ("import sys, json\n"
            "from helpers.build.results import save_results\n"
            f"save_results('study', {{'n_total': 3, 'ratio': float('nan'), 'arms': [{{'n': 1}}]}}, {str(tmp_path)!r})\n"
            "assert 'pandas' not in sys.modules and 'numpy' not in sys.modules, 'imported'\n")
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, check=True)
    saved = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert saved == {"study": {"n_total": 3, "ratio": None, "arms": [{"n": 1}]}}


def test_numpy_and_pandas_values_are_still_converted():
    import numpy as np
    import pandas as pd

    from helpers.build.results import to_jsonable

    assert to_jsonable({"a": np.int64(2), "b": np.float32(0.5), "c": np.bool_(True), "d": pd.NA,
                        "e": pd.Series({"x": np.nan}), "f": pd.DataFrame({"n": [1]})}) == \
        {"a": 2, "b": 0.5, "c": True, "d": None, "e": {"x": None}, "f": [{"n": 1}]}
    with pytest.raises(TypeError):
        to_jsonable(pd.Timestamp("2020-01-01"))


# --------------------------------------------------------------------------- the staging copy

@pytest.mark.parametrize("rendering", [True, False])
def test_the_staging_copy_keeps_figures_and_pages_and_drops_the_report(tmp_path, rendering):
    import shutil

    from helpers.build.pipeline import _not_carried_over

    out = tmp_path / "_output"
    for name in ("report.html", "report.pdf", "report.docx", "results.json", "figures/km.pdf",
                 "figures/km.svg", "notebooks/01-a.ipynb", "notebooks/01-a.html", f"notebooks/{render.PAGES_RECORD}"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("x", encoding="utf-8")
    staging = tmp_path / "staging"
    shutil.copytree(out, staging, ignore=_not_carried_over(out, rendering))
    kept = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
    pages = ["notebooks/01-a.html", f"notebooks/{render.PAGES_RECORD}"] if rendering else []
    assert kept == sorted(["results.json", "figures/km.pdf", "figures/km.svg", "notebooks/01-a.ipynb", *pages])


def test_the_staging_copy_links_the_study_pickle_and_copies_what_is_rewritten_in_place(tmp_path):
    import shutil

    from helpers.build.pipeline import _link_or_copy

    out = tmp_path / "_output"
    for name in (".cache/study-x.pickle", ".cache/study-x.pickle.tmp", "notebooks/01-a.ipynb", "figures/km.png"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("x", encoding="utf-8")
    staging = tmp_path / "staging"
    shutil.copytree(out, staging, copy_function=_link_or_copy)
    assert (staging / ".cache/study-x.pickle").samefile(out / ".cache/study-x.pickle")
    for name in (".cache/study-x.pickle.tmp", "notebooks/01-a.ipynb", "figures/km.png"):
        assert not (staging / name).samefile(out / name)
        assert (staging / name).read_text(encoding="utf-8") == "x"


# --------------------------------------------------------------------------- the benchmark

def test_the_benchmark_copies_the_project_and_edits_only_the_copys_prose(tmp_path):
    sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
    try:
        import benchmark_render as bench
    finally:
        sys.path.remove(str(PROJECT_ROOT / "scripts"))
    source = tmp_path / "source"
    (source / "sections").mkdir(parents=True)
    (source / "_output").mkdir()
    (source / "_output" / "report.html").write_text("old", encoding="utf-8")
    (source / bench.EDITED).write_text("Introduction.\n", encoding="utf-8")
    (source / "report.qmd").write_text("---\ntitle: x\n---\n", encoding="utf-8")
    copy_ = bench.copy_project(tmp_path / "copy", source)
    assert (copy_ / "report.qmd").exists() and not (copy_ / "_output").exists()
    sentence = bench.add_sentence(copy_, 1)
    assert (copy_ / bench.EDITED).read_text(encoding="utf-8") == f"Introduction.\n\n{sentence}\n"
    assert (source / bench.EDITED).read_text(encoding="utf-8") == "Introduction.\n"
    assert "target <= 3 s: PASS" in bench.summary_line("x", [{"seconds": 2.0, "cpu_seconds": 1.0}], 3.0)
    assert "target <= 3 s: FAIL" in bench.summary_line("x", [{"seconds": 3.5, "cpu_seconds": 1.0}], 3.0)


def test_not_estimated_names_an_unlabelled_cell_by_its_place_among_all_cells(tmp_path):
    from helpers.build.pipeline import not_estimated

    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook()
    cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("x = 1"),
             nbformat.v4.new_code_cell("show()"), nbformat.v4.new_code_cell("#| label: [unclosed\nshow()"),
             nbformat.v4.new_code_cell("#| label: tbl-x\nshow()")]
    for cell, text in zip(cells[2:], ["not estimable: too few events", "not estimable: no events",
                                      "not estimable: separation"]):
        cell.outputs = [nbformat.v4.new_output("display_data", data={"text/markdown": f"| a |\n|---|\n| {text} |"})]
    nb.cells = cells
    nbformat.write(nb, str(tmp_path / "notebooks" / "01-a.ipynb"))
    assert not_estimated(tmp_path) == ["01-a.ipynb, cell 3: not estimable: too few events",
                                       "01-a.ipynb, cell 4: not estimable: no events",
                                       "01-a.ipynb, tbl-x: not estimable: separation"]


# --------------------------------------------------------------------------- tables laid out once, citations kept

def _long_table(label: str, notes: str = "") -> str:
    return _table(label, f"A long table {label}.", [f"| row {i} | {i} | {2 * i} |" for i in range(40)], notes)


def _by_parts(source: Path, cache: Path, formats=("pdf", "html", "docx")) -> tuple[dict, render.TableLayouts]:
    """Each format's laid-out document (pandoc's JSON text) as render_with_pandoc makes it."""
    tables = render.TableLayouts(render._pandoc_path(), source, source.parent, source.parent, cache, formats, "rIdX")
    parsed = tables.read()
    render._drop_local_paths(parsed)
    typeset.protect(parsed)
    text, out = json.dumps(parsed), {}
    for fmt in formats:
        laid = typeset.lay_out(json.loads(text), {"pdf": "typst"}.get(fmt, fmt), docx_header="rIdX",
                               splice=tables.splicer(fmt))
        tables.save(fmt)
        out[fmt] = tables.dumps(laid, fmt)
    return out, tables


def _whole(source: Path, formats=("pdf", "html", "docx")) -> dict:
    out = {}
    for fmt in formats:
        document = _read_whole(source)
        render._drop_local_paths(document)
        out[fmt] = json.dumps(typeset.lay_out(typeset.protect(document), {"pdf": "typst"}.get(fmt, fmt),
                                              docx_header="rIdX"))
    return out


def test_tables_laid_out_once_and_kept_give_the_whole_documents_layout(source, tmp_path):
    cache = tmp_path / "cache"
    # long tables (numbered in Typst) split out, and one that cites, left in the prose between them
    text = MARKDOWN.replace("# References", "\n\n".join([_long_table("tbl-long-a"),
                                                         _long_table("tbl-long-cites", "As in [@cox1972]."),
                                                         _long_table("tbl-long-b"), "# References"]))
    source.write_text(text, encoding="utf-8")
    first, tables = _by_parts(source, cache)
    assert tables.active and first == _whole(source)
    assert (source.parent / "report-tables.md").exists()
    stored = {fmt: (cache / render.TABLE_LAYOUTS.format(fmt=fmt)).read_text(encoding="utf-8") for fmt in first}
    (source.parent / "report-tables.md").unlink()
    again, tables = _by_parts(source, cache)         # a prose-only edit: the tables are not read again
    assert again == first and not (source.parent / "report-tables.md").exists()
    assert stored == {fmt: (cache / render.TABLE_LAYOUTS.format(fmt=fmt)).read_text(encoding="utf-8") for fmt in first}
    # the prose changes: a sentence, and a long table that cites placed first (the long tables after
    # it are numbered one further: laid out again)
    source.write_text(text.replace("# 1 Methods", _long_table("tbl-long-first", "See [@kaplan1958].")
                                   + "\n\nA new sentence.\n\n# 1 Methods"), encoding="utf-8")
    edited, tables = _by_parts(source, cache)
    assert edited == _whole(source) and edited != first


def test_citations_are_kept_while_the_prose_cites_the_same(source, tmp_path):
    cache = tmp_path / "cache"
    _by_parts(source, cache, ("html",))
    kept = json.loads((cache / render.CITATIONS).read_text(encoding="utf-8"))
    assert kept["valid"] and len(kept["contents"]) == 3
    source.write_text(source.read_text(encoding="utf-8").replace("# 1 Methods", "# 1 Methods\n\nMore text."),
                      encoding="utf-8")
    edited, _ = _by_parts(source, cache, ("html",))
    assert edited == _whole(source, ("html",))
    assert json.loads((cache / render.CITATIONS).read_text(encoding="utf-8")) == kept    # taken, not made again
    source.write_text(source.read_text(encoding="utf-8").replace("More text.", "More text [@kaplan1958]."),
                      encoding="utf-8")
    cited, _ = _by_parts(source, cache, ("html",))
    assert cited == _whole(source, ("html",))
    assert len(json.loads((cache / render.CITATIONS).read_text(encoding="utf-8"))["contents"]) == 4


def test_the_finished_word_file_holds_what_recompressing_every_part_gives(tmp_path):
    import io
    import zipfile

    from helpers.build import docx_style

    path = tmp_path / "a.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", '<w:p><w:pPr><w:pStyle w:val="TableCaption" /></w:pPr>'
                         '<w:r><w:t xml:space="preserve">Table 1: A caption</w:t></w:r></w:p>')
        archive.writestr("word/media/figure.png", bytes(range(256)) * 50)
        archive.writestr("docProps/custom.xml", "<Properties />", compress_type=zipfile.ZIP_STORED)
    packed = path.read_bytes()
    docx_style.finish_docx(path)
    fast, slow = zipfile.ZipFile(path), zipfile.ZipFile(io.BytesIO(docx_style._finish(packed, raw=False)))
    assert fast.testzip() is None and fast.namelist() == slow.namelist()
    assert all(fast.read(name) == slow.read(name) for name in fast.namelist())
    assert b"SEQ Table" in fast.read("word/document.xml")


def test_the_study_section_is_taken_from_the_record_of_the_same_data_code_and_settings(tmp_path):
    from helpers.build import pipeline

    facts, settings = {"n_total": 3}, {"suppress_below": 0}
    record = {"key": "k", pipeline.STUDY_SECTION: {"of": pipeline._study_section_key(facts, settings),
                                                   "section": {"n_total": 3, "text": {"n": "3"}}}}
    (tmp_path / pipeline.VALIDATION_NAME).write_text(json.dumps(record), encoding="utf-8")
    assert pipeline._recorded_study_section(tmp_path, {"key": "k"}, facts, settings) == {"n_total": 3, "text": {"n": "3"}}
    assert pipeline._recorded_study_section(tmp_path, {"key": "other"}, facts, settings) is None
    assert pipeline._recorded_study_section(tmp_path, {"key": "k"}, {"n_total": 4}, settings) is None
    assert pipeline._recorded_study_section(tmp_path, {"key": "k"}, facts, {"suppress_below": 5}) is None
    assert pipeline._recorded_study_section(tmp_path, None, facts, settings) is None


def test_the_tables_typst_put_in_place_equals_the_whole_documents_typst(source, tmp_path):
    cache = tmp_path / "cache"
    source.write_text(MARKDOWN.replace("# References", "\n\n".join([
        _long_table("tbl-long-a"), _long_table("tbl-long-cites", "As in [@cox1972]."), "# References"])),
        encoding="utf-8")
    writer = [a for a in render._pandoc_writer_args(source.parent) if a != "--standalone"] + ["--to=typst-citations"]

    def typst_of(json_text: str, name: str) -> str:
        (source.parent / f"{name}.json").write_text(json_text, encoding="utf-8")
        render._run([render._pandoc_path(), f"{name}.json", *writer, "-o", f"{name}.typ"], source.parent)
        return (source.parent / f"{name}.typ").read_text(encoding="utf-8")

    expected = typst_of(_whole(source, ("pdf",))["pdf"], "whole")
    for run in ("made", "stored"):
        tables = render.TableLayouts(render._pandoc_path(), source, source.parent, source.parent, cache, ["pdf"], "rIdX")
        parsed = tables.read()
        render._drop_local_paths(parsed)
        laid = typeset.lay_out(typeset.protect(parsed), "typst", docx_header="rIdX", splice=tables.splicer("pdf"))
        got = typst_of(tables.dumps(laid, "pdf", writer), run)
        tables.save("pdf")
        assert render.TYPST_TABLE_RE.search(got), run          # the tables were put in as marks
        assert tables.splice_typst(got) == expected, run
    assert tables.splice_typst("no marks") is None
    tables.restore(laid)
    assert tables.dumps(laid, "pdf") == _whole(source, ("pdf",))["pdf"]


# --------------------------------------------------------------------------- the prose section by section

#: The demonstration document without its link to a heading by its text (which is read whole)
SECTIONED = MARKDOWN.replace("See [1.1 Results].", "See the results.")


def _plain_reader(root: Path) -> list[str]:
    """pandoc's reading options of the prose when the citations are kept (no citeproc)."""
    return [a for a in render._pandoc_reader_args(root) if a != "--citeproc"]


def _read_sections(source: Path, text: str, cache: Path) -> tuple[dict | None, list[int]]:
    """pandoc's document of ``text`` read section by section, and the sections it read."""
    from helpers.build import chunks

    reader = chunks.SectionReader(render._pandoc_path(), _plain_reader(source.parent), "pandoc x",
                                  source.parent, cache)
    command = reader.command(chunks.split_sections(text))
    if command:
        render._run(command, source.parent)
    return reader.document(), list(reader.missing)


def _read_plain_whole(source: Path, text: str) -> dict:
    path = source.with_name("plain-whole.md")
    path.write_text(text, encoding="utf-8")
    render._run([render._pandoc_path(), path.name, *_plain_reader(source.parent), "--to=json", "-o", "plain-whole.json"],
                source.parent)
    return json.loads(source.with_name("plain-whole.json").read_text(encoding="utf-8"))


def test_the_prose_read_section_by_section_equals_pandocs_reading_of_the_whole(source, tmp_path):
    from helpers.build import chunks

    text = SECTIONED + "\n# 2 Discussion\n\nAs @cox1972 [p. 3] showed, and [@kaplan1958].\n"
    sections = chunks.split_sections(text)
    assert sections is not None and "\n".join(sections) == text
    assert [s.lstrip("\n").split("\n", 1)[0] for s in sections[1:]] == [
        "# 1 Methods {#sec-methods}", "## 1.1 Results {#sec-results}", "# References {.unnumbered}", "# 2 Discussion"]
    cache = tmp_path / "cache"
    document, read = _read_sections(source, text, cache)
    assert read == list(range(len(sections))) and document == _read_plain_whole(source, text)
    # a prose-only edit: only the edited section is read again, and the whole is what pandoc reads
    edited = text.replace("As Table 1 shows.", "As Table 1 shows [@cox1972].")
    document, read = _read_sections(source, edited, cache)
    assert read == [2] and document == _read_plain_whole(source, edited)
    # the front matter changes: the first section is read again, with it
    edited = edited.replace('title: "Demo"', 'title: "Demo 2"')
    document, read = _read_sections(source, edited, cache)
    assert read == [0] and document == _read_plain_whole(source, edited)
    assert document["meta"]["title"]["c"][-1] == {"t": "Str", "c": "2"}


@pytest.mark.parametrize("extra", [
    "# 2 Discussion\n\nOnce.\n\n## Discussion\n\nTwice.", "See [1.1 Results] above.", "(@) An example list.",
    "A paragraph.\n\n---\ntitle: late metadata\n---", "<div>\n\n# A heading in raw HTML\n\n</div>"])
def test_prose_that_pandoc_reads_document_wide_is_not_cut(extra):
    from helpers.build import chunks

    assert chunks.split_sections(SECTIONED) is not None
    assert chunks.split_sections(SECTIONED + "\n" + extra + "\n") is None


def test_the_typst_written_part_by_part_equals_pandocs_typst_of_the_whole(source, tmp_path):
    from helpers.build import chunks

    laid = json.loads(_whole(source, ("pdf",))["pdf"])
    root, pandoc = source.parent, render._pandoc_path()
    (root / "header.typ").write_text("#set text(size: 10pt)\n", encoding="utf-8")
    body = [a for a in render._pandoc_writer_args(root) if a != "--standalone"] + ["--to=typst-citations"]
    standalone = [pandoc, *render._pandoc_writer_args(root), "--to=typst-citations", "--include-in-header=header.typ",
                  "-V", "papersize=a4"]
    (root / "whole.json").write_text(json.dumps(laid), encoding="utf-8")
    render._run([*standalone, "whole.json", "-o", "whole.typ"], root)
    expected = (root / "whole.typ").read_text(encoding="utf-8")
    assert len(chunks.cut_blocks(laid["blocks"])) == 3
    ran: list[list[list[str]]] = []

    def run_together(commands):
        ran.append(commands)
        render._run_together(commands, root)

    cache = tmp_path / "cache"
    for _ in ("made", "stored"):
        writer = chunks.TypstSections("pandoc x", root, cache)
        got = writer.write(json.loads(json.dumps(laid)), json.dumps, [pandoc, *body], standalone, run_together)
        assert got == expected
    assert [len(commands) for commands in ran] == [2, 1]      # stored: only the standalone shell is written
    # an edited part is written again, alone
    laid["blocks"].append({"t": "Para", "c": [{"t": "Str", "c": "edited"}]})
    got = chunks.TypstSections("pandoc x", root, cache).write(laid, json.dumps, [pandoc, *body], standalone,
                                                                      run_together)
    (root / "whole.json").write_text(json.dumps(laid), encoding="utf-8")
    render._run([*standalone, "whole.json", "-o", "whole.typ"], root)
    assert got == (root / "whole.typ").read_text(encoding="utf-8") and "edited" in got
    assert len(ran[-1]) == 2 and (root / "report-typst-parts.json").read_text(encoding="utf-8").count("supplement-part") == 2


def test_the_reports_prose_is_read_and_written_section_by_section_as_pandoc_does_whole(built_output, tmp_path):
    """On the report itself (make check): its tables are kept between renders, and its prose is read
    and written in Typst and HTML section by section exactly as pandoc converts the whole."""
    from helpers.build import chunks

    results = json.loads((built_output / "results.json").read_text(encoding="utf-8"))
    markdown = render.build_markdown(PROJECT_ROOT, results, tmp_path, built_output / "notebooks",
                                     render.fallback_renderer_line(), render.REPORT, render.BuildInfo.read(built_output))
    split = render.split_table_blocks(render.escape_lone_angle_brackets(markdown, render.PANDOC_COLUMNS))
    assert split is not None, "the report's tables are read with the prose at every render"
    prose = split[0]
    sections = chunks.split_sections(prose)
    assert sections is not None and len(sections) > 10, "the report's prose is read whole at every render"
    source = tmp_path / "report.md"
    document, _ = _read_sections(source, prose, tmp_path / "cache")
    assert document == _read_plain_whole(source, prose)

    typeset.protect(document)
    laid = typeset.lay_out(document, "typst", docx_header="rIdX")
    pandoc = render._pandoc_path()
    body = [a for a in render._pandoc_writer_args(tmp_path) if a != "--standalone"] + ["--to=typst-citations"]
    standalone = [pandoc, *render._pandoc_writer_args(tmp_path), "--to=typst-citations", "-V", "papersize=a4"]
    (tmp_path / "whole.json").write_text(json.dumps(laid), encoding="utf-8")
    render._run([*standalone, "whole.json", "-o", "whole.typ"], tmp_path)
    got = chunks.TypstSections("pandoc x", tmp_path, tmp_path / "cache").write(
        laid, json.dumps, [pandoc, *body], standalone, lambda commands: render._run_together(commands, tmp_path))
    assert got == (tmp_path / "whole.typ").read_text(encoding="utf-8")

    from helpers.build import html_style

    laid = typeset.lay_out(json.loads(json.dumps(document)), "html")
    (tmp_path / "template.html").write_text(html_style.TEMPLATE, encoding="utf-8")
    body = [pandoc, *[a for a in render._pandoc_writer_args(tmp_path) if a != "--standalone"], "--to=html5", "--mathml"]
    standalone = [pandoc, *render._pandoc_writer_args(tmp_path), "--to=html5", "--mathml", "--toc", "--toc-depth=3",
                  "--template=template.html"]
    (tmp_path / "whole.json").write_text(json.dumps(laid), encoding="utf-8")
    render._run([*standalone, "whole.json", "-o", "whole.html"], tmp_path)
    got = chunks.HtmlSections("pandoc x", tmp_path, tmp_path / "cache").write(
        laid, json.dumps, body, standalone, lambda commands: render._run_together(commands, tmp_path))
    assert got == (tmp_path / "whole.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("edit", ["sentence", "citation", "new section", "section removed", "title"])
def test_a_render_from_kept_pieces_equals_a_render_from_nothing(built_output, tmp_path, monkeypatch, edit):
    """A prose edit rendered with what the last render kept (tables, citations, sections read and in
    Typst) gives the Typst a render with an empty cache gives (make check, on the report itself)."""
    import typst

    project, out = tmp_path / "project", tmp_path / "_output"
    project.mkdir()
    for name in ("report.qmd", "references.bib"):
        shutil.copy(PROJECT_ROOT / name, project / name)
    for folder in ("sections", "_extensions", "notebooks"):
        shutil.copytree(PROJECT_ROOT / folder, project / folder)
    out.mkdir()
    for name in ("results.json", "build.json"):
        shutil.copy(built_output / name, out / name)
    shutil.copytree(built_output / "notebooks", out / "notebooks")
    typst_sources: list[str] = []
    monkeypatch.setattr(typst, "compile", lambda source, output, root: (
        typst_sources.append(Path(source).read_text(encoding="utf-8")), Path(output).write_bytes(b"%PDF-")))

    def rendered() -> str:
        work = Path(tempfile.mkdtemp(dir=tmp_path))
        render.render_with_pandoc(project, out, work, formats=("pdf",))
        return typst_sources[-1]

    rendered()      # the last render: what it keeps is stored
    intro, results = project / "sections" / "00-introduction.qmd", project / "sections" / "03-survival-results.qmd"
    if edit == "sentence":
        intro.write_text(intro.read_text(encoding="utf-8") + "\nA sentence added to the introduction.\n", encoding="utf-8")
    elif edit == "citation":
        intro.write_text(intro.read_text(encoding="utf-8") + "\nAs in [@kaplan1958].\n", encoding="utf-8")
    elif edit == "new section":
        results.write_text(results.read_text(encoding="utf-8") + "\n## An added subsection\n\nIts text.\n",
                           encoding="utf-8")
    elif edit == "section removed":
        report = project / "report.qmd"
        text = report.read_text(encoding="utf-8")
        start = text.index("# Reporting checklist {#sec-strobe}")
        report.write_text(text[:start] + text[text.index("# Technical appendix", start):], encoding="utf-8")
    else:
        report = project / "report.qmd"
        report.write_text(report.read_text(encoding="utf-8").replace('subtitle: "Supplementary methods and results"',
                                                                     'subtitle: "Edited subtitle"'), encoding="utf-8")
    warm = rendered()
    shutil.rmtree(out / render.RENDER_CACHE)
    cold = rendered()
    assert warm == cold
    assert {"sentence": "A sentence added", "citation": "Kaplan", "new section": "An added subsection",
            "section removed": "Technical appendix", "title": "Edited subtitle"}[edit] in warm
    assert edit != "section removed" or "Reporting checklist" not in warm


_BASE = "---\ntitle: Demo\n---\n\n# Methods\n\nText.\n\n"
#: Prose that pandoc reads with document-wide state (found by a review; each: the prose, then a
#: section's text before and after an edit)
_CROSS_SECTION = {
    "example list @.": (_BASE + "@. First example.\n\n# Results\n\n@. Second example.\n", "Second", "Later"),
    "heading in a block quote": (_BASE + "> ## Results\n\n# Discussion\n\n## Results\n\nx\n", "\nx\n", "\ny\n"),
    "heading in a list": (_BASE + "- ## Results\n\n# Discussion\n\n## Results\n\nx\n", "\nx\n", "\ny\n"),
    "heading with a link": ("# [CONSORT](https://www.consort-statement.org) diagram\n\nText.\n\n# Results\n\n"
                            "## CONSORT diagram\n\nx\n", "\nx\n", "\ny\n"),
    "explicit identifier, then a span": ("# Intro {#methods}\n\nText.\n\n# Results\n\n## [Methods]{.smallcaps}\n\nx\n",
                                         "\nx\n", "\ny\n"),
    "inline note": (_BASE + "A.^[See @cox1972.]\n\n# Results\n\nAs in [@cox1972].\n", "As in", "As shown in"),
    "link to a heading in a block quote": (_BASE + "> ## Baseline data\n\n# Results\n\nSee [Baseline data].\n",
                                           "See", "As in"),
    "link to a heading with closing hashes": ("# Methods\n\n## Baseline data ##\n\nText.\n\n# Results\n\n"
                                              "See [Baseline data].\n", "See", "As in"),
    "citation in a table caption": (_BASE + "| a | b |\n|---|---|\n| [@cox1972] | 2 |\n\nTable: From [@kaplan1958].\n\n"
                                    "# Results\n\nAs in [@cox1972].\n", "As in", "As shown in"),
    "citation in a link": (_BASE + "See [the paper by @cox1972](https://x.org) and [@kaplan1958].\n\n# Results\n\n"
                           "R [@cox1972].\n", "R [", "S ["),
    "citation in a figure caption": (_BASE + "![KM curve as in [@kaplan1958]](km.png)\n\nText [@cox1972].\n\n"
                                     "# Results\n\nR [@cox1972].\n", "R [", "S ["),
    "citation in the metadata": ("---\ntitle: Replicating @cox1972\n---\n\n# Methods\n\nText [@kaplan1958].\n\n"
                                 "# Results\n\nR [@cox1972].\n", "R [", "S ["),
    "a heading in a code block of four backticks": (
        "# Methods\n\nText.\n\n# Fit the model\n\nx <- 1\n```\n````\n", "Text.\n\n# Fit the model\n\nx <- 1",
        "````markdown\n```{r}\nlibrary(survival)\n\n# Fit the model\n\nx <- 1"),
}


@pytest.mark.parametrize("name", sorted(_CROSS_SECTION))
def test_prose_read_with_document_wide_state_is_read_whole_or_read_right(source, tmp_path, name):
    """Each reading, the first and the one after an edit (the other sections taken from the last
    render), is refused (then the prose is read whole) or equals pandoc's reading of the whole."""
    from helpers.build import chunks

    text, old, new = _CROSS_SECTION[name]
    assert old in text
    for version in (text, text.replace(old, new)):
        if chunks.split_sections(version) is None:
            continue
        document, _ = _read_sections(source, version, tmp_path / "cache")
        assert document is None or document == _read_plain_whole(source, version), version


def test_a_fence_closes_only_on_its_own_character_at_least_as_long():
    lines = "a\n````markdown\n```{r}\n# x\n```\n````\nb\n~~~\nc\n~~~~\nd".split("\n")
    assert [line for _, line in render._outside_code(lines)] == ["a", "b", "d"]


def test_a_section_kept_by_other_code_is_read_again(source, tmp_path, monkeypatch):
    from helpers.build import chunks

    cache = tmp_path / "cache"
    _read_sections(source, SECTIONED, cache)
    assert _read_sections(source, SECTIONED, cache)[1] == []
    chunks._code_digest.cache_clear()
    monkeypatch.setattr(chunks, "_code_digest", lambda: "other code")
    document, read = _read_sections(source, SECTIONED, cache)
    assert read == list(range(len(chunks.split_sections(SECTIONED)))) and document == _read_plain_whole(source, SECTIONED)


def test_the_html_written_part_by_part_equals_pandocs_html_of_the_whole(source, tmp_path):
    from helpers.build import chunks, html_style

    root, pandoc = source.parent, render._pandoc_path()
    laid = json.loads(_whole(source, ("html",))["html"])
    (root / "template.html").write_text(html_style.TEMPLATE, encoding="utf-8")
    (root / "style.html").write_text(html_style.style_header(), encoding="utf-8")
    body = [pandoc, *[a for a in render._pandoc_writer_args(root) if a != "--standalone"], "--to=html5", "--mathml"]
    standalone = [pandoc, *render._pandoc_writer_args(root), "--to=html5", "--mathml", "--toc", "--toc-depth=3",
                  "--template=template.html", "--include-in-header=style.html"]

    def whole(document: dict) -> str:
        (root / "whole.json").write_text(json.dumps(document), encoding="utf-8")
        render._run([*standalone, "whole.json", "-o", "whole.html"], root)
        return (root / "whole.html").read_text(encoding="utf-8")

    def parts(document: dict) -> str:
        return chunks.HtmlSections("pandoc x", root, tmp_path / "cache").write(
            json.loads(json.dumps(document)), json.dumps, body, standalone,
            lambda commands: render._run_together(commands, root))

    expected = whole(laid)
    assert 'id="toc-sec-results"' in expected
    assert parts(laid) == expected and parts(laid) == expected          # made, then stored
    laid["blocks"].insert(2, {"t": "Para", "c": [{"t": "Str", "c": "edited"}]})
    assert parts(laid) == whole(laid)
    laid["blocks"].append({"t": "Para", "c": [{"t": "Note", "c": [{"t": "Para", "c": [{"t": "Str", "c": "n"}]}]}]})
    with pytest.raises(ValueError, match="note"):
        parts(laid)
