"""Media types by content: real (tiny) files of every allowed kind, built here."""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib

import pytest

from documents.sniff import (
    ALLOWED_MEDIA_TYPES,
    CSV,
    DOCX,
    HEAD_BYTES,
    JPEG,
    OFD,
    PDF,
    PNG,
    TEXT,
    XLSX,
    MediaTypeMismatch,
    check_declared,
    sniff,
    sniff_file,
)

PDF_BYTES = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes() -> bytes:
    """A valid 1x1 RGB PNG."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", pixels)
        + _png_chunk(b"IEND", b"")
    )


JPEG_BYTES = (
    b"\xff\xd8"  # SOI
    + b"\xff\xe0"
    + struct.pack(">H", 16)
    + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"  # APP0
    + b"\xff\xd9"  # EOI
)

CONTENT_TYPES = b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'


def zip_bytes(entries: dict[str, bytes], *, stored: bool = False) -> bytes:
    buffer = io.BytesIO()
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


DOCX_ENTRIES = {
    "[Content_Types].xml": CONTENT_TYPES,
    "_rels/.rels": b"<Relationships/>",
    "word/document.xml": b"<w:document/>",
}
XLSX_ENTRIES = {
    "[Content_Types].xml": CONTENT_TYPES,
    "_rels/.rels": b"<Relationships/>",
    "xl/workbook.xml": b"<workbook/>",
    "xl/worksheets/sheet1.xml": b"<worksheet/>",
}
OFD_ENTRIES = {
    "OFD.xml": b'<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" Version="1.0"/>',
    "Doc_0/Document.xml": b"<ofd:Document/>",
    "Doc_0/Pages/Page_0/Content.xml": b"<ofd:Page/>",
}

SAMPLES = {
    PDF: PDF_BYTES,
    PNG: png_bytes(),
    JPEG: JPEG_BYTES,
    DOCX: zip_bytes(DOCX_ENTRIES),
    XLSX: zip_bytes(XLSX_ENTRIES),
    OFD: zip_bytes(OFD_ENTRIES),
}
CSV_UTF8 = "点位编号,检测项目,结果(mg/kg)\nS1,镉,0.32\nS2,铅,41\n".encode()
CSV_GB18030 = "点位编号,检测项目,结果(mg/kg)\nS1,镉,0.32\n".encode("gb18030")


@pytest.mark.parametrize("media_type", sorted(SAMPLES))
def test_sniff_head(media_type: str) -> None:
    assert sniff(SAMPLES[media_type]) == media_type


@pytest.mark.parametrize("media_type", sorted(SAMPLES))
def test_sniff_file(media_type: str) -> None:
    assert sniff_file(io.BytesIO(SAMPLES[media_type])) == media_type


@pytest.mark.parametrize("encoded", [CSV_UTF8, b"\xef\xbb\xbf" + CSV_UTF8, CSV_GB18030])
def test_csv_by_name(encoded: bytes) -> None:
    assert sniff(encoded, "检测结果.csv") == CSV
    assert sniff(encoded, "检测结果.CSV") == CSV
    assert sniff_file(io.BytesIO(encoded), "a.csv") == CSV
    assert sniff(encoded, "notes.txt") == TEXT
    assert sniff(encoded) == TEXT


def test_names_do_not_make_a_type() -> None:
    assert sniff(b"\x00\x01\x02garbage", "report.pdf") is None
    assert sniff(bytes(range(1, 32)) * 8, "a.csv") is None


def test_text_with_nul_or_control_bytes_is_not_text() -> None:
    assert sniff(b"a,b\n1,\x002\n", "a.csv") is None
    assert sniff(b"a,b\n1,\x1b2\n", "a.csv") is None
    assert sniff(b"a,b\t\r\n1,2\x0c\n", "a.csv") == CSV


def test_invalid_in_both_encodings_is_not_text() -> None:
    # 0xFF is never valid in UTF-8 nor in GB18030.
    assert sniff(b"a,b\n\xff\xff\n", "a.csv") is None


def test_head_cut_inside_a_character_is_still_text() -> None:
    text = ("镉" * 5000).encode()
    head = text[:HEAD_BYTES]  # 8192 is not a multiple of 3: the last character is cut
    assert len(head) % 3 != 0
    assert sniff(head, "a.csv") == CSV
    assert sniff_file(io.BytesIO(text), "a.csv") == CSV


def test_sniff_file_reads_text_to_the_end() -> None:
    tail_binary = CSV_UTF8 * 400 + b"\x00\x00binary"
    assert sniff(tail_binary[:HEAD_BYTES], "a.csv") == CSV
    assert sniff_file(io.BytesIO(tail_binary), "a.csv") is None
    truncated = CSV_UTF8 + "镉".encode()[:2]
    assert sniff_file(io.BytesIO(truncated), "a.csv") is None


def test_big_zip_needs_sniff_file() -> None:
    """The central directory is at the end: past the head, only sniff_file can see it."""
    big = zip_bytes({**DOCX_ENTRIES, "word/media/image1.png": os.urandom(64 * 1024)}, stored=True)
    head = big[:HEAD_BYTES]
    assert sniff(head) is None
    assert sniff_file(io.BytesIO(big)) == DOCX


def test_sniff_file_restores_position() -> None:
    stream = io.BytesIO(SAMPLES[XLSX])
    stream.seek(7)
    assert sniff_file(stream) == XLSX
    assert stream.tell() == 7


@pytest.mark.parametrize(
    "entries",
    [
        {"[Content_Types].xml": CONTENT_TYPES, "word/a.xml": b"", "xl/b.xml": b""},
        {**OFD_ENTRIES, **DOCX_ENTRIES},
        {"word/document.xml": b"<w:document/>"},  # no OOXML manifest
        {"[Content_Types].xml": CONTENT_TYPES, "ppt/presentation.xml": b""},
        {"Doc_0/OFD.xml": b""},  # OFD.xml must be at the root
        {"readme.txt": b"just a zip"},
    ],
)
def test_zip_that_is_not_exactly_one_kind(entries: dict[str, bytes]) -> None:
    data = zip_bytes(entries)
    assert sniff(data) is None
    assert sniff_file(io.BytesIO(data)) is None


def test_corrupt_zip() -> None:
    data = SAMPLES[DOCX][:-30]  # the end-of-central-directory record is gone
    assert sniff(data) is None
    assert sniff_file(io.BytesIO(data)) is None


def test_empty() -> None:
    assert sniff(b"") is None
    assert sniff_file(io.BytesIO()) is None


def test_allowed_types() -> None:
    assert {*SAMPLES, CSV} == ALLOWED_MEDIA_TYPES
    assert TEXT not in ALLOWED_MEDIA_TYPES


@pytest.mark.parametrize(
    ("sniffed", "declared", "filename"),
    [
        (PDF, "application/pdf", "调查报告.pdf"),
        (PDF, "application/pdf; charset=binary", "report.PDF"),
        (PDF, None, "report"),
        (PDF, "application/octet-stream", "report.pdf"),
        (PDF, "", "2024.03.15 报告"),
        (JPEG, "image/jpg", "photo.jpeg"),
        (JPEG, "IMAGE/JPEG", "photo.JPG"),
        (CSV, "application/vnd.ms-excel", "检测结果.csv"),
        (CSV, "text/plain", "检测结果.csv"),
        (OFD, "application/ofd", "决定书.ofd"),
        (DOCX, DOCX, "修复方案.docx"),
        (XLSX, None, "lab.xlsx"),
        (PNG, "image/png", "公告牌.png"),
    ],
)
def test_check_declared_accepts(sniffed: str, declared: str | None, filename: str) -> None:
    check_declared(sniffed, declared, filename)


@pytest.mark.parametrize(
    ("sniffed", "declared", "filename", "reason"),
    [
        (PNG, None, "report.pdf", "named .pdf but the content is image/png"),
        (PNG, "application/pdf", "photo.png", "declared as application/pdf"),
        (PDF, "image/png", "report.pdf", "declared as image/png"),
        (PDF, None, "report.pdf.exe", "named .exe"),
        (DOCX, None, "plan.doc", "named .doc"),
        (TEXT, "text/plain", "notes.txt", "the content is text/plain"),
        (None, None, "report.pdf", "not recognised"),
        ("application/zip", None, "a.zip", "the content is application/zip"),
    ],
)
def test_check_declared_refuses(
    sniffed: str | None, declared: str | None, filename: str, reason: str
) -> None:
    with pytest.raises(MediaTypeMismatch) as refused:
        check_declared(sniffed, declared, filename)
    assert reason in refused.value.reason
    assert isinstance(refused.value, ValueError)


def test_png_named_pdf_end_to_end() -> None:
    data = SAMPLES[PNG]
    with pytest.raises(MediaTypeMismatch):
        check_declared(sniff_file(io.BytesIO(data), "report.pdf"), "application/pdf", "report.pdf")
