"""``make report``: outputs on good data, nothing touched on bad data."""
from __future__ import annotations

import os
import subprocess
import sys

from helpers.config import PROJECT_ROOT
from tests.conftest import edit_csv


def test_the_report_exists_in_html_and_pdf_and_says_it_is_synthetic(built_output):
    html = (built_output / "report.html").read_text(encoding="utf-8")
    assert "synthetic" in html.lower()
    assert (built_output / "report.pdf").read_bytes()[:4] == b"%PDF"


def _run_report(data, out):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "helpers.pipeline", "--data", str(data), "--output", str(out)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, env=env, timeout=600)


def test_bad_data_exit_non_zero_with_a_clear_message_and_leave_output_untouched(data_copy, tmp_path):
    out = tmp_path / "_output"
    out.mkdir()
    (out / "results.json").write_text('{"previous": "good run"}')
    edit_csv(data_copy / "cohort.csv", lambda f: f.assign(kps=f["kps"].where(f.index != 2, "75")))
    result = _run_report(data_copy, out)
    assert result.returncode == 2
    assert "cohort.csv, column 'kps': not a multiple of 10" in result.stderr
    assert "(row 3 [SYN-" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]
    assert (out / "results.json").read_text() == '{"previous": "good run"}'
    assert not list(tmp_path.glob(".*staging*"))


def test_every_pdf_page_and_the_html_banner_say_the_data_are_synthetic(built_output):
    from pypdf import PdfReader

    from helpers.render import SYNTHETIC_PAGE_MARK

    pages = PdfReader(built_output / "report.pdf").pages
    assert len(pages) > 10
    for number, page in enumerate(pages, 1):
        assert "SYNTHETIC DATA" in page.extract_text(), f"page {number} has no synthetic-data mark"
    html = (built_output / "report.html").read_text(encoding="utf-8")
    assert 'class="synthetic-banner"' in html and SYNTHETIC_PAGE_MARK.split(":")[0] in html
