"""Rendering the supplement: embed integrity of the real report, and the fallback renderer on a
small fixture project (one notebook with a table cell and a figure cell, a short report)."""
from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml

from helpers.config import PROJECT_ROOT
from helpers.build.render import (EmbedError, RenderError, UnknownResultError, build_markdown, check_embeds,
                            build_sentence, number_crossrefs, parse_cell_options, render_report)

#: Notebook labels deliberately not embedded in report.qmd, each with its reason.
DELIBERATELY_NOT_EMBEDDED = {
    # 01-cohort lists the input files with shortened checksums; the report prints the full
    # SHA-256 digests instead (08-reproduction, tbl-input-checksums).
    "tbl-data-files",
}


# --------------------------------------------------------------------------- the real report

def test_every_embed_of_the_report_points_to_an_existing_notebook_cell_and_every_label_is_used():
    problems = check_embeds(PROJECT_ROOT, excluded=DELIBERATELY_NOT_EMBEDDED)
    assert problems == [], "embed integrity:\n" + "\n".join(problems)


def test_every_cross_reference_in_my_sections_names_a_defined_section():
    report = (PROJECT_ROOT / "report.qmd").read_text(encoding="utf-8")
    defined = set(re.findall(r"\{#(sec-[\w-]+)", report))
    for path in sorted((PROJECT_ROOT / "sections").glob("[09][09]-*.qmd")):
        used = set(re.findall(r"@(sec-[A-Za-z0-9_-]*[A-Za-z0-9_])", path.read_text()))
        assert used <= defined, f"{path.name} refers to undefined {sorted(used - defined)}"


# --------------------------------------------------------------------------- fixture project

def _png() -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.step([0, 1, 2, 3], [1.0, 0.8, 0.5, 0.3], where="post")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


TABLE_MD = "| Arm | n |\n|:---|---:|\n| A | 3 |\n| B | 4 |\n\nCounts per arm."


def _notebook(executed: bool) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    table = nbformat.v4.new_code_cell('#| label: tbl-demo\n#| tbl-cap: "Patients per arm."\nshow()')
    figure = nbformat.v4.new_code_cell(
        '#| label: fig-demo\n#| fig-cap: "Survival by arm."\n#| fig-alt: "A falling step curve."\nplot()')
    if executed:
        table.outputs = [
            nbformat.v4.new_output("stream", name="stderr",
                                   text="/x.py:1: SparseLevelWarning: level B has fewer than 5 patients\n"),
            nbformat.v4.new_output("execute_result", data={"text/markdown": TABLE_MD,
                                                           "text/plain": "<Markdown>"}, execution_count=1)]
        figure.outputs = [nbformat.v4.new_output("display_data", data={"image/png": _png(),
                                                                       "text/plain": "<Figure>"})]
    nb.cells = [nbformat.v4.new_markdown_cell("# Demo"), table, figure]
    return nb


REPORT = """---
title: "Demo supplement"
bibliography: references.bib
---

{{< synthetic-notice >}}

# Methods {#sec-methods}

{{< include sections/methods.qmd >}}

# Results {#sec-results}

As @tbl-demo and [@fig-demo] show (panel [-@fig-demo]; see also @sec-methods), the median was
{{< res os.text.median >}} months [@kaplan1958].

{{< embed notebooks/01-demo.ipynb#tbl-demo >}}

{{< embed notebooks/01-demo.ipynb#fig-demo >}}

<!-- {{< res not.a.path >}} is commented out and never resolved -->

# Software {.unnumbered}

{{< renderer >}}
"""

BIB = """@article{kaplan1958, author = {Kaplan, E. L. and Meier, Paul},
  title = {Nonparametric estimation from incomplete observations},
  journal = {J Am Stat Assoc}, year = {1958}, volume = {53}, pages = {457--481}}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A tiny manuscript project with its output folder already holding the executed notebook."""
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    (root / "sections").mkdir()
    (root / "_extensions" / "res").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "_extensions" / "res" / "synthetic-notice.md",
                root / "_extensions" / "res" / "synthetic-notice.md")
    (root / "report.qmd").write_text(REPORT, encoding="utf-8")
    (root / "sections" / "methods.qmd").write_text(
        "Methods text; results are in @sec-results.\n", encoding="utf-8")
    (root / "references.bib").write_text(BIB, encoding="utf-8")
    nbformat.write(_notebook(executed=False), str(root / "notebooks" / "01-demo.ipynb"))
    out = root / "_output"
    (out / "notebooks").mkdir(parents=True)
    nbformat.write(_notebook(executed=True), str(out / "notebooks" / "01-demo.ipynb"))
    results = {"data": {"synthetic": True, "sha256": {"cohort.csv": "0" * 64}},
               "os": {"text": {"median": "10.8 (95% CI 8.9–12.9)"}}}
    (out / "results.json").write_text(json.dumps(results), encoding="utf-8")
    return root


def _markdown(project: Path, results: dict | None = None) -> str:
    out = project / "_output"
    if results is None:
        results = json.loads((out / "results.json").read_text())
    return build_markdown(project, results, project / "work", out / "notebooks", "RENDERER LINE")


def test_fixture_report_resolves_includes_results_and_cross_references(project):
    text = _markdown(project)
    assert "Methods text; results are in [Section 2](#sec-results)." in text
    assert "the median was\n10.8 (95% CI 8.9–12.9) months" in text
    assert "As [Table 1](#tbl-demo) and [Figure 1](#fig-demo) show (panel [1](#fig-demo); " \
           "see also [Section 1](#sec-methods))" in text
    assert "{{<" not in text and "not.a.path" not in text
    assert "RENDERER LINE" in text


def test_embedded_table_gets_a_numbered_caption_with_its_label_before_the_pipe_table(project):
    text = _markdown(project)
    assert "Table: Table 1: Patients per arm. {#tbl-demo}\n\n| Arm | n |" in text
    assert "Counts per arm." in text


def test_embedded_figure_is_written_to_media_with_caption_and_alt_text(project):
    text = _markdown(project)
    assert ('![Figure 1: Survival by arm.](media/fig-demo.png){#fig-demo '
            'alt="A falling step curve."}') in text
    assert (project / "work" / "media" / "fig-demo.png").read_bytes()[:4] == b"\x89PNG"


def test_a_warning_emitted_by_an_embedded_cell_is_shown_once_as_a_note_in_words(project):
    text = _markdown(project)
    assert "Level B has fewer than 5 patients." in text
    assert "Warning" not in text and "Caveat" not in text


@pytest.mark.parametrize("synthetic, shown", [(True, True), (False, False)])
def test_synthetic_notice_is_shown_only_when_results_say_the_data_are_synthetic(project, synthetic, shown):
    results = {"data": {"synthetic": synthetic}, "os": {"text": {"median": "x"}}}
    assert ("> **Synthetic data.**" in _markdown(project, results)) is shown


def test_an_unknown_results_path_is_an_error_naming_the_path(project):
    with pytest.raises(UnknownResultError, match=r"os\.text\.median"):
        _markdown(project, {"data": {"synthetic": True}, "os": {}})


def test_an_embed_of_a_missing_label_is_an_error_naming_notebook_and_label(project):
    report = project / "report.qmd"
    report.write_text(report.read_text().replace("#fig-demo >}}", "#fig-nope >}}"))
    with pytest.raises(EmbedError, match="fig-nope"):
        _markdown(project)


def test_a_cross_reference_to_an_undefined_label_is_an_error():
    with pytest.raises(RenderError, match="@tbl-missing"):
        number_crossrefs("See @tbl-missing.\n")


def test_email_addresses_and_citations_are_not_taken_for_cross_references():
    text = "Write to a@fig-x.org; see [@kaplan1958] and @cox1972.\n"
    assert number_crossrefs(text) == text


def test_unnumbered_headings_keep_no_number_and_subsections_count_within_their_section():
    text = "# A\n\n## B {#sec-b}\n\n# Refs {.unnumbered}\n\n# C\n\n## D {#sec-d}\n\n@sec-b @sec-d\n"
    out = number_crossrefs(text)
    assert "# 1 A" in out and "## 1.1 B {#sec-b}" in out and "# Refs {.unnumbered}" in out
    assert "## 2.1 D {#sec-d}" in out and "[Section 1.1](#sec-b) [Section 2.1](#sec-d)" in out


@pytest.mark.parametrize("source, expected", [
    ('#| label: tbl-x\n#| tbl-cap: "A caption: with colon"\nf()', {"label": "tbl-x",
                                                                  "tbl-cap": "A caption: with colon"}),
    ("#| label: fig-y\n#| fig-alt: Curve\nplot()", {"label": "fig-y", "fig-alt": "Curve"}),
    ("x = 1\n#| label: late", {}),
])
def test_cell_options_are_read_from_the_leading_hash_pipe_lines(source, expected):
    assert parse_cell_options(source) == expected


def test_embed_check_reports_missing_notebooks_labels_and_unembedded_labels(project):
    report = project / "report.qmd"
    report.write_text(report.read_text().replace("#fig-demo >}}", "#fig-nope >}}")
                      + "\n{{< embed notebooks/99-none.ipynb#tbl-z >}}\n")
    problems = "\n".join(check_embeds(project))
    assert "has no cell labelled 'fig-nope'" in problems
    assert "notebooks/99-none.ipynb does not exist" in problems
    assert "notebooks/01-demo.ipynb#fig-demo is neither embedded" in problems
    assert check_embeds(project, excluded={"fig-demo"}) == [
        "report.qmd: embeds notebooks/01-demo.ipynb#fig-nope but that notebook has no cell labelled 'fig-nope'",
        "report.qmd: embeds notebooks/99-none.ipynb#tbl-z but notebooks/99-none.ipynb does not exist"]


def test_an_unknown_citation_key_is_one_clear_error_naming_the_key_and_the_file(project):
    methods = project / "sections" / "methods.qmd"
    methods.write_text(methods.read_text(encoding="utf-8") + "As @kaplan1985 showed; see $$x$$ and @eq-cox.\n",
                       encoding="utf-8")
    before = sorted(p.name for p in (project / "_output").iterdir() if not p.name.startswith("."))
    with pytest.raises(RenderError) as raised:
        render_report(project, project / "_output", renderer="pandoc+typst")
    message = str(raised.value)
    assert message.startswith("unknown citations:")
    assert "@kaplan1985 (sections/methods.qmd): not in references.bib" in message
    assert "@eq-cox (sections/methods.qmd): an equation cross-reference" in message
    assert "@kaplan1958" not in message and "typst" not in message.lower()
    # no report written (the render cache may keep what was read)
    assert sorted(p.name for p in (project / "_output").iterdir() if not p.name.startswith(".")) == before


def test_the_html_title_block_shows_the_reports_subtitle(project):
    report = project / "report.qmd"
    report.write_text(report.read_text(encoding="utf-8").replace(
        'title: "Demo supplement"', 'title: "Demo supplement"\nsubtitle: "Online-only material"'), encoding="utf-8")
    render_report(project, project / "_output", renderer="pandoc+typst", formats=("html",))
    page = (project / "_output" / "report.html").read_text(encoding="utf-8")
    assert '<p class="subtitle">Online-only material</p>' in page
    assert "Supplementary methods and results" not in page


def test_images_are_embedded_as_pandocs_embed_resources_writes_them(tmp_path, caplog):
    import base64

    from helpers.build import html_style

    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "a.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>", encoding="utf-8")
    (tmp_path / "b.png").write_bytes(b"\x89PNG demo")
    page = ('<p><img src="media/a.svg"\nalt="A &quot;curve&quot; &gt; 1" /></p>\n<img src="b.png" />\n'
            '<img src="https://example.org/c.png" alt="remote" />\n<img src="missing.png" />')
    with caplog.at_level("WARNING"):
        out = html_style.embed_images(page, [tmp_path / "elsewhere", tmp_path])
    svg = base64.b64encode((tmp_path / "media" / "a.svg").read_bytes()).decode()
    assert (f'<img role="img" aria-label="A &quot;curve&quot; &gt; 1" src="data:image/svg+xml;base64,{svg}"\n'
            'alt="A &quot;curve&quot; &gt; 1" />') in out
    png = base64.b64encode((tmp_path / "b.png").read_bytes()).decode()
    assert f'<img src="data:image/png;base64,{png}" />' in out
    assert '<img src="https://example.org/c.png" alt="remote" />' in out and '<img src="missing.png" />' in out
    assert "missing.png was not found" in caplog.text
    assert html_style.style_header().startswith('<style type="text/css">\n:root {')


def test_embed_check_passes_on_a_consistent_project(project):
    assert check_embeds(project) == []


def test_fallback_renders_self_contained_html_pdf_and_docx_and_names_the_renderer(project):
    info = render_report(project, project / "_output", renderer="pandoc+typst")
    assert info.renderer == "pandoc+typst"
    assert sorted(p.name for p in info.files) == ["report.docx", "report.html", "report.pdf"]
    html = (project / "_output" / "report.html").read_text(encoding="utf-8")
    assert 'src="data:image/png;base64,' in html and 'src="media/' not in html
    assert "Table 1: Patients per arm." in html and "Figure 1: Survival by arm." in html
    assert 'alt="A falling step curve."' in html
    assert "Kaplan" in html and "Rendered with pandoc" in html and "helpers" not in html.split("<body")[1]
    assert (project / "_output" / "report.pdf").read_bytes()[:5] == b"%PDF-"
    assert (project / "_output" / "report.docx").read_bytes()[:2] == b"PK"
    assert not list((project / "_output").glob(".render-*")), "temporary folder left behind"


def test_a_failed_render_leaves_the_previous_outputs_untouched(project):
    old = project / "_output" / "report.html"
    old.write_text("previous render")
    (project / "_output" / "results.json").write_text(json.dumps({"data": {"synthetic": True}}))
    with pytest.raises(UnknownResultError):
        render_report(project, project / "_output", renderer="pandoc+typst")
    assert old.read_text() == "previous render"
    assert not list((project / "_output").glob(".render-*"))


def test_a_missing_executed_notebook_asks_for_the_notebooks_to_be_executed(project):
    (project / "_output" / "notebooks" / "01-demo.ipynb").unlink()
    with pytest.raises(EmbedError, match="execute the notebooks first"):
        render_report(project, project / "_output", renderer="pandoc+typst", formats=("html",))


FAKE_QUARTO = """#!/bin/sh
# Records its arguments and the staged notebook, then writes the three outputs like quarto would.
echo "$@" > "$QUARTO_LOG"
cp notebooks/01-demo.ipynb "$QUARTO_LOG.ipynb"
echo "$SUPPLEMENT_BUILD_SENTENCE" > "$QUARTO_LOG.build"
mkdir -p _manuscript
for ext in html pdf docx; do echo "$ext by quarto" > _manuscript/report.$ext; done
"""


def test_with_quarto_on_path_the_project_is_staged_with_executed_notebooks_and_not_executed(
        project, tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    quarto = bindir / "quarto"
    quarto.write_text(FAKE_QUARTO)
    quarto.chmod(quarto.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "quarto.log"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("QUARTO_LOG", str(log))
    info = render_report(project, project / "_output")
    assert info.renderer == "quarto"
    assert (project / "_output" / "report.pdf").read_text() == "pdf by quarto\n"
    assert log.read_text().split() == ["render", "--no-execute", "--to", "html", "--to", "typst",
                                       "--to", "docx"]
    staged = nbformat.read(str(log) + ".ipynb", as_version=4)
    assert staged.cells[1].outputs, "Quarto must see the executed notebook, not the committed one"
    # the res extension's {{< renderer >}} reads the build sentence the fallback prints (date, commit)
    assert (tmp_path / "quarto.log.build").read_text().strip() == build_sentence(project.resolve())


def test_quarto_renderer_shortcode_appends_the_build_sentence(tmp_path):
    import pypandoc

    script = tmp_path / "call.lua"
    lua = PROJECT_ROOT / "_extensions" / "res" / "res.lua"
    script.write_text(f'local sc = dofile("{lua}")\nio.write(pandoc.utils.stringify(sc["renderer"]()))\n')
    sentence = "The document was built on 29 November 2026 from commit 0123456789ab of the project."
    proc = subprocess.run([pypandoc.get_pandoc_path(), "lua", str(script)], capture_output=True, text=True,
                          env=dict(os.environ, SUPPLEMENT_BUILD_SENTENCE=sentence))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ("Rendered with Quarto unknown version from the notebooks as executed by the build. "
                           + sentence)


@pytest.mark.parametrize("path, printed", [
    ("os.text.median", "10.8 (95% CI 8.9–12.9)"),
    ("os.n", "87"),
    ("os.p", "0.004"),
    ("os.none", "not available"),
])
def test_quarto_res_shortcode_prints_the_same_strings_as_the_fallback(tmp_path, path, printed):
    import pypandoc

    results = tmp_path / "results.json"
    results.write_text(json.dumps({"os": {"text": {"median": "10.8 (95% CI 8.9–12.9)"}, "n": 87,
                                          "p": 0.004, "none": None}}))
    script = tmp_path / "call.lua"
    lua = PROJECT_ROOT / "_extensions" / "res" / "res.lua"
    script.write_text(f'local sc = dofile("{lua}")\n'
                      f'io.write(pandoc.utils.stringify(sc["res"]({{"{path}"}})))\n')
    proc = subprocess.run([pypandoc.get_pandoc_path(), "lua", str(script)], capture_output=True,
                          text=True, env=dict(os.environ, SUPPLEMENT_RESULTS=str(results)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == printed


def test_quarto_res_shortcode_fails_naming_an_unknown_path(tmp_path):
    import pypandoc

    results = tmp_path / "results.json"
    results.write_text(json.dumps({"os": {}}))
    script = tmp_path / "call.lua"
    lua = PROJECT_ROOT / "_extensions" / "res" / "res.lua"
    script.write_text(f'local sc = dofile("{lua}")\nsc["res"]({{"os.missing.key"}})\n')
    proc = subprocess.run([pypandoc.get_pandoc_path(), "lua", str(script)], capture_output=True,
                          text=True, env=dict(os.environ, SUPPLEMENT_RESULTS=str(results)))
    assert proc.returncode != 0 and "os.missing.key" in proc.stderr


# --------------------------------------------------------------------------- pandoc input and runs

#: Every construct near which a ``<`` may stand; pandoc must read the same document whether or not
#: escape_lone_angle_brackets went over it.
ANGLE_BRACKETS_MD = r"""---
title: "Edge cases: P <0.05"
abstract: |
  Values < 3 in the abstract.
---

# Heading with P <0.05 {#sec-edge}

Plain P <0.001, <= 60, < 70, x<y, a <- b, 3<4, end <
next line and *emphasis <1* and **bold < 2** and 'quoted <3' and "double <4".

Code `a < b` and ``x `<` y`` and math $a < b$ and $$c <= d$$ and display
$$
e < f
$$
and a dollar US$5 < 6 without a close.

Autolinks <https://example.org> and <me@example.org> and <1me@example.org> and a tag <span>x < y</span>.

A [link <1](#sec-edge "title <2") and [@ref, p. <3] and ![fig <4](x.png){#fig-a alt="alt <5" width="50%"}.

Escaped \< already, and \\< after an escaped backslash, and <!-- comment < --> done.

| A | B |
|---|---|
| <1 | <= 2 |

| Column with a long header that makes the row wider than seventy-two characters | B |
|:---|---:|
| <1 | <= 2 |

  Simple   Table
  -------  ------
  <1       <= 2

+------+------+
| <1   | <= 2 |
+------+------+

Table: Caption with P <0.05 {#tbl-x}

- list item < 1
    - nested < 2

      continuation < 3

        indented code < 4

1. numbered <5

> quote < 6
> more <7

| line block < 8
| second < 9

Term < 10
:   definition < 11

::: {.note}
Div content < 12
:::

```
fenced code < 13
```

~~~~ {.python}
x = 1 < 2
```
still code < 14
~~~~

<div>
html block < 15
</div>

Footnote[^1] and inline^[note < 16].

[^1]: The note < 17.

Raw `<b>`{=html} and \textbf{a < b} raw tex and \begin{tabular} a < b \end{tabular}.

Hard break < 18\
after < 19

Author-in-text @ref [p. <3] and @ref[-@ref2, <4] and [see [x] <2 @ref] and [-@ref <5].

Super^a <b^ and sub~c~ and ~~strike < 1~~ and [small <2]{.smallcaps} and [span <3]{#s .c key="v <4"}.

[text <1][refdef] and [refdef] and [Heading with P <0.05] implicit.

[refdef]: https://example.org "Title <9"

(@) Example < 1.
(@good) Example < 2.

As @good shows < 3.

| Wide table with a code cell in it that is surely longer than the seventy-two columns | B |
|:---|---:|
| `a <1` | $x<2$ and <= 3 |

: Caption after the table < 4 {#tbl-after}

Smart 'quoted <3' and "double <4" and '<5' and "<6" and '< 7' and it's <8 and rock'n'roll <9.

Brackets (<0.05) and [<3] and {<4} and <<5 and <-> and <=> and 1<2<3 and a<b and  <  spaced.

Emphasis *<1* and **<2** and _<3_ and __<4__ and ~~<5~~ and ^<6^ and ~<7~ and `<8`.

Citations \\[@ref <3] and \[not a cite <4] and [@ref] <5 and @ref <6 and @ref [<7].

Ellipsis... <1 and dashes -- <2 and --- <3 and em—<4 and non-breaking\ <5.

Line ending with backslash <\
next.

* list <1
* list <2

    indented code after list <3

Math \$ <1 and US\$ <2.

Term
  ~ def <1

Trailing lone <
"""


def _pandoc_document(markdown: str) -> dict:
    import pypandoc

    proc = subprocess.run([pypandoc.get_pandoc_path(), "--from=markdown", "--columns=72", "--to=json"],
                          input=markdown, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def test_escaping_lone_angle_brackets_leaves_the_document_pandoc_reads_unchanged():
    from helpers.build.render import escape_lone_angle_brackets

    escaped = escape_lone_angle_brackets(ANGLE_BRACKETS_MD, columns=72)
    assert escaped.count("\\<") - ANGLE_BRACKETS_MD.count("\\<") >= 20  # the common cases are escaped
    assert "# Heading with P \\<0.05" in escaped and "| \\<1 | \\<= 2 |" in escaped
    assert "Code `a < b`" in escaped and 'title: "Edge cases: P <0.05"' in escaped  # left alone
    assert _pandoc_document(escaped) == _pandoc_document(ANGLE_BRACKETS_MD)


def test_escaping_leaves_documents_with_raw_content_html_unchanged():
    from helpers.build.render import escape_lone_angle_brackets

    text = "P <0.05\n\n<pre>\n\na < b\n\n</pre>\n"
    assert escape_lone_angle_brackets(text) == text


def test_fallback_typesets_each_format_from_one_reading_of_the_markdown(project, tmp_path):
    """pandoc reads the Markdown once; each format is written from the typeset document
    (helpers.build.typeset): the text survives, symbols are Unicode, the Word file is A4."""
    import zipfile

    from helpers.build.render import render_with_pandoc

    (project / "sections" / "methods.qmd").write_text(
        "Methods text (P <0.05, ages <= 60); results are in @sec-results.\n", encoding="utf-8")
    out = project / "_output"
    work = tmp_path / "work"
    work.mkdir()
    files = render_with_pandoc(project, out, work)
    assert sorted(p.suffix for p in files) == [".docx", ".html", ".pdf"]
    typ = (work / "report.typ").read_text(encoding="utf-8")
    assert "Kaplan" in typ
    assert "≤" in typ, typ[typ.find("Methods text"):][:200]
    assert "P~" in typ or "P\u00a0" in typ   # pandoc writes a no-break space as ~ in Typst
    html = (work / "report.html").read_text(encoding="utf-8")
    assert 'class="sidebar"' in html and "title-block" in html
    assert 'class="notebook-link"' in html and (work / "notebook-pages").is_dir()   # links to the notebooks
    assert 'class="notebook-link"' not in typ
    with zipfile.ZipFile(work / "report.docx") as docx:
        assert re.search(r'<w:pgSz (?=[^>]*w:w="11906")(?=[^>]*w:h="16838")', docx.read("word/document.xml").decode())


# --------------------------------------------------------------------------- values other cohorts lack
def test_a_prose_value_this_cohort_did_not_produce_reads_not_estimated_and_warns(project):
    from helpers.build.render import MISSING_TEXT, MissingResultWarning
    with pytest.warns(MissingResultWarning, match=r"os\.text\.median"):
        text = _markdown(project, {"data": {"synthetic": True}, "os": {"text": {}}})
    assert f"the median was\n*{MISSING_TEXT}* months" in text


def test_strict_mode_stops_on_a_value_this_cohort_did_not_produce(project, monkeypatch):
    from helpers.build.render import STRICT_ENV
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(UnknownResultError, match=r"os\.text\.median"):
        _markdown(project, {"data": {"synthetic": True}, "os": {"text": {}}})


def test_the_render_reports_the_values_shown_as_not_estimated(project):
    (project / "_output" / "results.json").write_text(json.dumps({"data": {"synthetic": True}, "os": {"text": {}}}))
    info = render_report(project, project / "_output", renderer="pandoc+typst", formats=("html",))
    assert info.missing_values == ("os.text.median",)


def test_rendering_and_reading_results_do_not_load_pandas():
    """The prose-only rebuild stays fast: the render path and helpers.build.results import no pandas."""
    import subprocess
    import sys
    code = ("import sys, helpers.build.render, helpers.build.results, helpers.build.execute;"
            "helpers.build.render.lookup_result({'a': {'b': 1}}, 'a.b');"
            "print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- parts of the study

from helpers.build.render import BuildInfo, select_parts  # noqa: E402

PARTS_TEXT = """Always.
<!-- part: response -->
Response prose.
<!-- part: replication -->
Response and replication.
<!-- /part -->
<!-- /part -->
<!-- part: not replication -->
No replication.
<!-- /part -->
End."""


@pytest.mark.parametrize("parts, kept", [
    ({"response", "replication"}, ["Always.", "Response prose.", "Response and replication.", "End."]),
    ({"response"}, ["Always.", "Response prose.", "No replication.", "End."]),
    (set(), ["Always.", "No replication.", "End."]),
])
def test_prose_marked_for_a_part_is_kept_only_when_the_study_has_it(parts, kept):
    assert select_parts(PARTS_TEXT, BuildInfo(parts=frozenset(parts))).split("\n") == kept


def test_without_a_build_record_every_part_is_kept():
    assert "No replication." not in select_parts(PARTS_TEXT, BuildInfo())
    assert "Response and replication." in select_parts(PARTS_TEXT, BuildInfo())


@pytest.mark.parametrize("text, message", [
    ("<!-- part: responses -->\nx\n<!-- /part -->", "unknown part 'responses'"),
    ("<!-- part: pfs -->\nx", "not closed"),
    ("x\n<!-- /part -->", "closes no part"),
])
def test_a_misspelt_or_unbalanced_part_marker_is_an_error_naming_the_file(text, message):
    with pytest.raises(RenderError, match=message):
        select_parts(text, BuildInfo(parts=frozenset()), "x.qmd")


def _record(project: Path, parts, notebooks, title=None):
    (project / "_output" / "build.json").write_text(
        json.dumps({"parts": sorted(parts), "notebooks": notebooks, "title": title}), encoding="utf-8")


def test_a_part_the_study_lacks_is_dropped_with_its_embeds_and_references_to_them(project):
    report = project / "report.qmd"
    report.write_text(report.read_text().replace(
        "{{< embed notebooks/01-demo.ipynb#fig-demo >}}",
        "<!-- part: pfs -->\n{{< embed notebooks/01-demo.ipynb#fig-demo >}}\n<!-- /part -->"))
    _record(project, ["synthetic"], ["01-demo.ipynb"], title="A study of two arms")
    with pytest.warns(UserWarning):
        text = build_markdown(project, json.loads((project / "_output" / "results.json").read_text()),
                              project / "work", project / "_output" / "notebooks", "R",
                              build=BuildInfo.read(project / "_output"))
    assert "fig-demo.png" not in text and "not produced for these data" in text
    assert "Table 1: Patients per arm." in text
    assert 'title: A study of two arms' in text.split("---")[1]


def test_embeds_of_a_notebook_that_did_not_run_are_dropped_not_an_error(project):
    report = project / "report.qmd"
    report.write_text(report.read_text().replace("As @tbl-demo and [@fig-demo] show (panel [-@fig-demo]; see also @sec-methods), ", ""))
    (project / "_output" / "notebooks" / "01-demo.ipynb").unlink()
    _record(project, ["synthetic"], [])
    info = render_report(project, project / "_output", renderer="pandoc+typst", formats=("html",))
    html = info.files[0].read_text(encoding="utf-8")
    assert "Patients per arm" not in html and "Demo supplement" in html


def test_the_quarto_stage_drops_absent_parts_unrun_notebooks_and_takes_the_study_title(project):
    from helpers.build.render import stage_sources

    stage = project
    (stage / "_quarto.yml").write_text(yaml.safe_dump({"manuscript": {"article": "report.qmd", "notebooks": [
        {"notebook": "notebooks/01-demo.ipynb"}, {"notebook": "notebooks/04-response.ipynb"}]}}))
    report = stage / "report.qmd"
    report.write_text(report.read_text() + "\n<!-- part: response -->\nResponse words.\n<!-- /part -->\n"
                      "{{< embed notebooks/04-response.ipynb#tbl-response >}}\n")
    shutil.copy(stage / "_output" / "notebooks" / "01-demo.ipynb", stage / "notebooks" / "01-demo.ipynb")
    stage_sources(stage, BuildInfo(parts=frozenset(), notebooks=frozenset({"01-demo.ipynb"}), title="Trial X"), {})
    text = report.read_text()
    assert "Response words" not in text and "04-response" not in text and "01-demo.ipynb#tbl-demo" in text
    assert "title: Trial X" in text
    listed = yaml.safe_load((stage / "_quarto.yml").read_text())["manuscript"]["notebooks"]
    assert listed == [{"notebook": "notebooks/01-demo.ipynb"}]
