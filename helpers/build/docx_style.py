"""The Word document of the fallback renderer: our own A4 reference.docx, and finishing touches.

python-docx is not a dependency: :func:`reference_docx` patches pandoc's default reference document
(``pandoc --print-default-data-file reference.docx``) with :mod:`zipfile` and string edits:

* A4 page (11906 × 16838 twips), 2.2 cm side and 2.4 cm top and bottom margins, as the PDF;
* the "Table" style: a rule above and below the table and under the header row, cell padding, 8-pt
  type, rows that do not break across pages, the header row repeated on each page;
* a "Table Note" paragraph style (7.5 pt) for the notes under a table, keep-with-next captions;
* a running header with the synthetic-data notice on every page when the data are synthetic, and the
  page number in a footer of every section;
* 11-pt Arial text in British English (en-GB), references in 9 pt.

:func:`finish_docx` then sets table cells in the 8-pt "Table Text" style, turns the caption numbers ("Table 3:", "Figure 2:") into Word ``SEQ`` fields,
so Word renumbers them, and removes any local file path from the document properties.
"""
from __future__ import annotations

import copy
import io
import re
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path
from xml.sax.saxutils import escape

A4_TWIPS = (11906, 16838)
MARGINS_TWIPS = {"left": 1247, "right": 1247, "top": 1361, "bottom": 1361, "header": 680, "footer": 680}
HEADER_REL_ID = "rIdSupplementHeader"
#: The footer (the page number, centred) of every section (helpers.build.typeset._docx_section_break too)
FOOTER_REL_ID = "rIdSupplementFooter"
FOOTER_XML = ('<w:ftr {w} {r}><w:p><w:pPr><w:jc w:val="center" /></w:pPr><w:r><w:rPr><w:sz w:val="18" /></w:rPr>'
              '<w:fldChar w:fldCharType="begin" /></w:r><w:r><w:rPr><w:sz w:val="18" /></w:rPr>'
              '<w:instrText xml:space="preserve"> PAGE </w:instrText></w:r><w:r><w:rPr><w:sz w:val="18" /></w:rPr>'
              '<w:fldChar w:fldCharType="separate" /></w:r><w:r><w:rPr><w:sz w:val="18" /></w:rPr><w:t>1</w:t></w:r>'
              '<w:r><w:rPr><w:sz w:val="18" /></w:rPr><w:fldChar w:fldCharType="end" /></w:r></w:p></w:ftr>')

_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
_R = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'

TABLE_STYLE = """<w:style w:type="table" w:default="1" w:styleId="Table">
    <w:name w:val="Table" />
    <w:basedOn w:val="TableNormal" />
    <w:uiPriority w:val="59" />
    <w:qFormat />
    <w:pPr><w:spacing w:before="0" w:after="0" w:line="240" w:lineRule="auto" /><w:jc w:val="left" /></w:pPr>
    <w:rPr><w:sz w:val="16" /><w:szCs w:val="16" /></w:rPr>
    <w:tblPr>
      <w:tblInd w:w="0" w:type="dxa" />
      <w:tblBorders>
        <w:top w:val="single" w:sz="8" w:space="0" w:color="000000" />
        <w:bottom w:val="single" w:sz="8" w:space="0" w:color="000000" />
      </w:tblBorders>
      <w:tblCellMar>
        <w:top w:w="40" w:type="dxa" />
        <w:left w:w="85" w:type="dxa" />
        <w:bottom w:w="40" w:type="dxa" />
        <w:right w:w="85" w:type="dxa" />
      </w:tblCellMar>
    </w:tblPr>
    <w:trPr><w:cantSplit /></w:trPr>
    <w:tblStylePr w:type="firstRow">
      <w:trPr><w:tblHeader /></w:trPr>
      <w:tcPr>
        <w:tcBorders>
          <w:bottom w:val="single" w:sz="4" w:space="0" w:color="000000" />
        </w:tcBorders>
        <w:vAlign w:val="bottom" />
      </w:tcPr>
    </w:tblStylePr>
  </w:style>"""

EXTRA_STYLES = """<w:style w:type="paragraph" w:customStyle="1" w:styleId="TableText">
    <w:name w:val="Table Text" />
    <w:basedOn w:val="Normal" />
    <w:qFormat />
    <w:pPr><w:spacing w:before="0" w:after="0" w:line="240" w:lineRule="auto" /></w:pPr>
    <w:rPr><w:sz w:val="16" /><w:szCs w:val="16" /></w:rPr>
  </w:style>
  <w:style w:type="paragraph" w:customStyle="1" w:styleId="TableNote">
    <w:name w:val="Table Note" />
    <w:basedOn w:val="Normal" />
    <w:qFormat />
    <w:pPr><w:spacing w:before="40" w:after="60" /></w:pPr>
    <w:rPr><w:sz w:val="15" /><w:szCs w:val="15" /></w:rPr>
  </w:style>
  <w:style w:type="paragraph" w:customStyle="1" w:styleId="RunningHeader">
    <w:name w:val="Running Header" />
    <w:basedOn w:val="Normal" />
    <w:pPr><w:jc w:val="right" /><w:spacing w:before="0" w:after="0" /></w:pPr>
    <w:rPr><w:color w:val="B35900" /><w:sz w:val="15" /><w:szCs w:val="15" /></w:rPr>
  </w:style>
</w:styles>"""


def _default_reference(pandoc: str) -> bytes:
    return subprocess.run([pandoc, "--print-default-data-file", "reference.docx"], capture_output=True,
                          check=True).stdout


def _section_properties(header: bool) -> str:
    ref = (f'<w:headerReference w:type="default" r:id="{HEADER_REL_ID}" />' if header else "") + \
        f'<w:footerReference w:type="default" r:id="{FOOTER_REL_ID}" />'
    m = MARGINS_TWIPS
    return (f'<w:sectPr>{ref}<w:footnotePr><w:numRestart w:val="eachSect" /></w:footnotePr>'
            f'<w:pgSz w:w="{A4_TWIPS[0]}" w:h="{A4_TWIPS[1]}" />'
            f'<w:pgMar w:top="{m["top"]}" w:right="{m["right"]}" w:bottom="{m["bottom"]}" '
            f'w:left="{m["left"]}" w:header="{m["header"]}" w:footer="{m["footer"]}" w:gutter="0" />'
            f'</w:sectPr>')


def reference_docx(pandoc: str, header_text: str | None = None) -> bytes:
    """The project's reference.docx (see module docstring); ``header_text`` is the running header
    (the synthetic-data notice), None for no header."""
    source = zipfile.ZipFile(io.BytesIO(_default_reference(pandoc)))
    # the parts added to pandoc's document: the footer always, the running header with synthetic data
    parts = [("footer", FOOTER_REL_ID)] + ([("header", HEADER_REL_ID)] if header_text else [])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "word/document.xml":
                text = data.decode("utf-8")
                text = re.sub(r"<w:sectPr>.*?</w:sectPr>", _section_properties(bool(header_text)), text, flags=re.S)
                if "xmlns:r=" not in text[:2000]:
                    text = text.replace("<w:document ", f"<w:document {_R} ", 1)
                data = text.encode("utf-8")
            elif item.filename == "word/styles.xml":
                text = data.decode("utf-8")
                text = re.sub(r'<w:style w:type="table" w:default="1" w:styleId="Table">.*?</w:style>',
                              TABLE_STYLE, text, count=1, flags=re.S)
                text = text.replace("</w:styles>", EXTRA_STYLES)
                # captions: 9 pt upright (a journal's style); a table caption stays with its table
                text = re.sub(r'(w:styleId="Caption">.*?<w:rPr>)\s*<w:i />',
                              r'\1<w:sz w:val="18" /><w:szCs w:val="18" />', text, count=1, flags=re.S)
                # body 11 pt in British English (the document's language); references 9 pt, close set
                text = text.replace('<w:sz w:val="24" />\n        <w:szCs w:val="24" />',
                                    '<w:sz w:val="22" />\n        <w:szCs w:val="22" />', 1)
                text = text.replace('w:lang w:val="en-US"', 'w:lang w:val="en-GB"', 1)
                # Arial (Liberation Sans, metric-compatible, where Arial is absent) instead of the theme's
                # Calibri, which LibreOffice replaces by the wider DejaVu Sans: column widths then hold
                text = re.sub(r'<w:rFonts w:asciiTheme="minorHAnsi"[^>]*/>',
                              '<w:rFonts w:ascii="Arial" w:hAnsi="Arial" w:cs="Arial" w:eastAsiaTheme="minorEastAsia" />',
                              text, count=1)
                text = re.sub(r'(w:styleId="Bibliography">.*?)<w:pPr />\s*<w:rPr />',
                              r'\1<w:pPr><w:spacing w:after="60" /></w:pPr>'
                              r'<w:rPr><w:sz w:val="18" /><w:szCs w:val="18" /></w:rPr>', text, count=1, flags=re.S)
                data = text.encode("utf-8")
            elif item.filename == "word/_rels/document.xml.rels":
                relation = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
                data = _insert_before(data, "</Relationships>", [
                    f'<Relationship Type="{relation}{part}" Id="{rel_id}" Target="{part}1.xml" />'
                    for part, rel_id in parts])
            elif item.filename == "[Content_Types].xml":
                kind = "application/vnd.openxmlformats-officedocument.wordprocessingml."
                data = _insert_before(data, "</Types>", [
                    f'<Override PartName="/word/{part}1.xml" ContentType="{kind}{part}+xml" />' for part, _ in parts])
            elif item.filename == "docProps/custom.xml":
                data = _clean_properties(data.decode("utf-8")).encode("utf-8")
            target.writestr(item, data)
        target.writestr("word/footer1.xml", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                        + FOOTER_XML.format(w=_W, r=_R))
        if header_text:
            target.writestr("word/header1.xml",
                            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:hdr {_W} {_R}>'
                            f'<w:p><w:pPr><w:pStyle w:val="RunningHeader" /></w:pPr><w:r><w:t xml:space="preserve">'
                            f'{escape(header_text)}</w:t></w:r></w:p></w:hdr>')
    return out.getvalue()


def _insert_before(data: bytes, closing: str, entries: list[str]) -> bytes:
    """``data`` (UTF-8 XML) with ``entries`` inserted before its ``closing`` tag."""
    return data.decode("utf-8").replace(closing, "".join(entries) + closing).encode("utf-8")


_PATH_RE = re.compile(r"(?:^|[\s>\"'=])(?:/[\w.+-]+){2,}|[A-Za-z]:\\")
_PROPERTY_RE = re.compile(r"<property\b[^>]*>.*?</property>", re.S)


def _clean_properties(xml: str) -> str:
    """custom.xml without properties whose value holds a local file path."""
    return _PROPERTY_RE.sub(lambda m: "" if _PATH_RE.search(re.sub(r"<[^>]+>", " ", m.group(0))) else m.group(0), xml)


_CAPTION_PARA_RE = re.compile(r'<w:p>(?:(?!</w:p>).)*?<w:pStyle w:val="(?:TableCaption|ImageCaption)" />.*?</w:p>', re.S)
_CAPTION_NUMBER_RE = re.compile(r'(<w:r>(?:<w:rPr>(?:(?!</w:rPr>).)*</w:rPr>)?)<w:t xml:space="preserve">(Table|Figure) (\d+):', re.S)


def _seq_fields(xml: str) -> str:
    def caption(match: re.Match) -> str:
        para = match.group(0)

        def number(m: re.Match) -> str:
            run, kind, n = m.group(1), m.group(2), m.group(3)
            return (f'{run}<w:t xml:space="preserve">{kind} </w:t></w:r>'
                    f'<w:fldSimple w:instr=" SEQ {kind} \\* ARABIC ">{run}<w:t>{n}</w:t></w:r></w:fldSimple>'
                    f'{run}<w:t xml:space="preserve">:')
        return _CAPTION_NUMBER_RE.sub(number, para, count=1)
    return _CAPTION_PARA_RE.sub(caption, xml)


_TABLE_RE = re.compile(r"<w:tbl>.*?</w:tbl>", re.S)


def _table_text(xml: str) -> str:
    """Table cells in the 8-pt "Table Text" style instead of pandoc's "Compact" body style."""
    return _TABLE_RE.sub(lambda m: m.group(0).replace('<w:pStyle w:val="Compact" />',
                                                      '<w:pStyle w:val="TableText" />'), xml)


#: The parts of the Word file that :func:`finish_docx` changes; the others (the figures: most of the
#: file's bytes) are copied as they are compressed
_FINISHED = {"word/document.xml": lambda xml: _table_text(_seq_fields(xml)),
             "docProps/custom.xml": _clean_properties}


def finish_docx(path: Path) -> None:
    """In place: caption numbers as SEQ fields; no local paths in docProps (module docstring)."""
    path = Path(path)
    packed = path.read_bytes()
    try:
        finished = _finish(packed, raw=True)
    except (ValueError, AttributeError, struct.error, zipfile.BadZipFile):
        finished = _finish(packed, raw=False)     # every part decompressed and compressed again
    path.write_bytes(finished)


def _finish(packed: bytes, raw: bool) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(packed))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            change = _FINISHED.get(item.filename)
            if change is not None:
                target.writestr(item, change(source.read(item.filename).decode("utf-8")).encode("utf-8"))
            elif raw:
                _copy_compressed(packed, item, target)
            else:
                target.writestr(item, source.read(item.filename))
    return out.getvalue()


def _copy_compressed(packed: bytes, item: zipfile.ZipInfo, target: zipfile.ZipFile) -> None:
    """Append the entry ``item`` of the archive ``packed`` to ``target`` as it is compressed (what
    ``ZipFile.writestr`` does after compressing: local header, data, entry in the directory)."""
    offset = item.header_offset
    if packed[offset:offset + 4] != b"PK\x03\x04" or item.flag_bits & 0x01:
        raise ValueError(f"{item.filename}: not a plain local entry")
    name_length, extra_length = struct.unpack("<HH", packed[offset + 26:offset + 30])
    start = offset + 30 + name_length + extra_length
    data = packed[start:start + item.compress_size]
    if len(data) != item.compress_size or zlib.crc32(_inflate(data, item)) != item.CRC:
        raise ValueError(f"{item.filename}: data do not match the directory")
    info = copy.copy(item)
    info.flag_bits &= ~0x08          # sizes and CRC in the local header, no data descriptor
    info.header_offset = target.fp.tell()
    target.fp.write(info.FileHeader())
    target.fp.write(data)
    target.start_dir = target.fp.tell()
    target.filelist.append(info)
    target.NameToInfo[info.filename] = info
    target._didModify = True


def _inflate(data: bytes, item: zipfile.ZipInfo) -> bytes:
    if item.compress_type == zipfile.ZIP_STORED:
        return data
    if item.compress_type == zipfile.ZIP_DEFLATED:
        return zlib.decompress(data, -15)
    raise ValueError(f"{item.filename}: compression {item.compress_type}")
