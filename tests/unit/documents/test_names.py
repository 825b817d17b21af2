"""File names: what a person uploaded stays readable, what could mislead or break goes."""

from __future__ import annotations

import email.message
import unicodedata

import pytest

from documents.names import content_disposition, sanitize_filename, split_extension


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("土壤污染状况调查报告.pdf", "土壤污染状况调查报告.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\张三\\修复方案.docx", "修复方案.docx"),
        ("a/b\\c/检测结果.xlsx", "检测结果.xlsx"),
        ("rep\x00ort\x07.pdf", "report.pdf"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("\u2066报告\u2069\u202a\u202b\u202c\u202d.pdf", "报告.pdf"),
        ("zero\u200bwidth\ufeff.png", "zerowidth.png"),
        ("  ..hidden.pdf", "hidden.pdf"),
        ("土壤  污染\t调查\n报告\u3000终稿.pdf", "土壤 污染 调查 报告 终稿.pdf"),
        ("report .pdf", "report.pdf"),
        ("report.pdf. ", "report.pdf"),
        ('a:b?"c"|<d>*.pdf', "a_b__c___d__.pdf"),
        ("2024.03.15 报告", "2024.03.15 报告"),
        ("", "document"),
        ("...", "document"),
        ("../", "document"),
        ("\u202e\x00", "document"),
        (".pdf", "document.pdf"),
        ("dir/  .jpg", "document.jpg"),
    ],
)
def test_sanitize(raw: str, clean: str) -> None:
    assert sanitize_filename(raw) == clean


def test_nfc_normalised() -> None:
    decomposed = "Cafe\u0301 re\u0301sume\u0301.pdf"
    assert sanitize_filename(decomposed) == unicodedata.normalize("NFC", decomposed)
    assert sanitize_filename(decomposed) == "Café résumé.pdf"


def test_truncation_keeps_the_extension() -> None:
    name = sanitize_filename("甲" * 300 + ".xlsx")
    assert len(name) == 120
    assert name == "甲" * 115 + ".xlsx"
    assert sanitize_filename("a" * 50 + ".pdf", max_length=20) == "a" * 16 + ".pdf"


def test_truncation_does_not_end_in_a_dot_or_space() -> None:
    assert sanitize_filename("a" * 14 + " .b.pdf", max_length=20) == "a" * 14 + ".pdf"


def test_name_without_extension_truncates_whole() -> None:
    assert sanitize_filename("x" * 200) == "x" * 120


@pytest.mark.parametrize(
    "raw",
    ["土壤污染状况调查报告.pdf", "../../a\x00b.pdf", "  ..x.jpg", "甲" * 300 + ".csv", "\u202e"],
)
def test_idempotent(raw: str) -> None:
    once = sanitize_filename(raw)
    assert sanitize_filename(once) == once


def test_max_length_too_small_for_any_name() -> None:
    with pytest.raises(ValueError):
        sanitize_filename("a.pdf", max_length=5)


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("a.pdf", ("a", ".pdf")),
        ("archive.tar.gz", ("archive.tar", ".gz")),
        ("v1.2", ("v1.2", "")),
        ("2024.03.15 报告", ("2024.03.15 报告", "")),
        (".pdf", ("", ".pdf")),
        ("noext", ("noext", "")),
    ],
)
def test_split_extension(name: str, parts: tuple[str, str]) -> None:
    assert split_extension(name) == parts


def _parsed_filename(header: str) -> str | None:
    """The name as an RFC 6266 client reads it: `filename*` wins over `filename`.

    The stdlib's RFC 2231 decoder (which RFC 5987 profiles) reads `filename*` alone; given
    both it would keep the first.
    """
    extended = header.split("; ")[-1]
    assert extended.startswith("filename*=")
    message = email.message.Message()
    message["Content-Disposition"] = f"attachment; {extended}"
    return message.get_filename()


def test_content_disposition_chinese() -> None:
    header = content_disposition("土壤污染状况调查报告.pdf")
    assert header == (
        'attachment; filename="document.pdf"; '
        "filename*=UTF-8''%E5%9C%9F%E5%A3%A4%E6%B1%A1%E6%9F%93%E7%8A%B6%E5%86%B5"
        "%E8%B0%83%E6%9F%A5%E6%8A%A5%E5%91%8A.pdf"
    )
    assert header.isascii()
    assert _parsed_filename(header) == "土壤污染状况调查报告.pdf"


def test_content_disposition_inline_and_ascii_fallback() -> None:
    header = content_disposition("Café résumé (v2).pdf", inline=True)
    assert header.startswith('inline; filename="Cafe resume (v2).pdf"; ')
    assert _parsed_filename(header) == "Café résumé (v2).pdf"


def test_content_disposition_mixed_name_keeps_ascii_part() -> None:
    header = content_disposition("2024年度监测报告.pdf")
    assert 'filename="2024.pdf"' in header


@pytest.mark.parametrize(
    "hostile",
    ['a"; filename="evil.exe.pdf', "a\r\nSet-Cookie: x=1.pdf", 'a\\";.pdf', "\u202eexe.pdf"],
)
def test_content_disposition_cannot_be_injected(hostile: str) -> None:
    header = content_disposition(hostile)
    assert header.isascii()
    assert "\r" not in header and "\n" not in header
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert '"' not in fallback and "\\" not in fallback and ";" not in fallback
    assert header.count('"') == 2
