"""rules.lab_results: lab spreadsheets (XLSX, CSV) -> validated GB 36600 samples."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from rules import gb_standards as gb
from rules import lab_results as lab
from rules.lab_results import LabResultsError, parse_lab_results
from rules.templates import make_template

HEADER: list[Any] = ["sample_id", "depth_m", "item", "value", "unit", "background"]
TEMPLATES = Path(make_template.__file__).parent
Rows = list[list[Any]]


def xlsx(tmp_path: Path, rows: Rows) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    path = tmp_path / "lab.xlsx"
    book.save(path)
    return path.read_bytes()


def csv_data(rows: Rows, *, encoding: str = "utf-8", delimiter: str = ",") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return out.getvalue().encode(encoding)


def encode(kind: str, tmp_path: Path, rows: Rows) -> bytes:
    return xlsx(tmp_path, rows) if kind == "xlsx" else csv_data(rows)


def problems(data: bytes, **kwargs: Any) -> list[dict[str, Any]]:
    with pytest.raises(LabResultsError) as caught:
        parse_lab_results(data, **kwargs)
    return caught.value.problems


def one_row(tmp_path: Path, kind: str, row: list[Any], header: list[str] = HEADER) -> bytes:
    return encode(kind, tmp_path, [header, row])


def only_problem(data: bytes) -> dict[str, Any]:
    found = problems(data)
    assert len(found) == 1, found
    return found[0]


KINDS = ["xlsx", "csv"]

# --------------------------------------------------------------------------- 500 rows


def lab_file(n: int) -> Rows:
    names = ["苯并[a]芘", "铅", "六价铬", "50-32-8", "Arsenic", "总石油烃"]
    units = ["mg/kg", "μg/kg", "g/kg", "ug/kg"]
    return [
        [f"S{i:04d}", i % 10 / 2, names[i % len(names)], i % 37 + 0.5, units[i % 4], None]
        for i in range(n)
    ]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bad_value", [-3.2, "n/a"])
def test_500_rows_with_three_bad_rows_names_exactly_those(
    tmp_path: Path, kind: str, bad_value: Any
) -> None:
    rows = lab_file(500)
    rows[100][2] = "苯并a]芘"  # spreadsheet row 102
    rows[250][4] = "mg/l"  # row 252
    rows[400][3] = bad_value  # row 402
    with pytest.raises(LabResultsError) as caught:
        parse_lab_results(encode(kind, tmp_path, [HEADER, *rows]))
    found = [(p["row"], p["column"], p["value"]) for p in caught.value.problems]
    assert found == [
        (102, "item", "苯并a]芘"),
        (252, "unit", "mg/l"),
        (402, "value", str(bad_value)),
    ]
    reasons = [p["reason"] for p in caught.value.problems]
    assert reasons[0].startswith("unknown item (closest: 苯并[a]芘 (Benzo[a]pyrene, 50-32-8);")
    assert reasons[1] == "unknown unit; accepted: mg/kg, μg/kg, ug/kg, g/kg"
    assert reasons[2] == ("must not be negative" if bad_value == -3.2 else "not a number")
    message = caught.value.message
    assert message.startswith(
        "3 rows have problems: row 102 item '苯并a]芘': unknown item (closest: 苯并[a]芘"
    )
    assert "row 252 unit 'mg/l': unknown unit" in message
    assert str(caught.value) == message


@pytest.mark.parametrize("kind", KINDS)
def test_500_good_rows_parse(tmp_path: Path, kind: str) -> None:
    samples = parse_lab_results(encode(kind, tmp_path, [HEADER, *lab_file(500)]))
    assert len(samples) == 500
    assert samples[1] == {
        "item": "铅",
        "value_mg_kg": 0.0015,  # 1.5 μg/kg
        "depth_m": 0.5,
        "background_mg_kg": None,
        "sample_id": "S0001",
    }
    assert {s["item"] for s in samples} == {
        "苯并[a]芘",
        "铅",
        "铬（六价）",
        "砷",
        "石油烃（C10-C40）",
    }
    assert gb.sample_problems(samples) == []  # ready for evaluate_construction
    json.dumps(samples)


def test_every_problem_of_a_row_is_reported_left_to_right(tmp_path: Path) -> None:
    found = problems(csv_data([HEADER, ["", "deep", "??", "ND", "", "x"]]))
    assert [(p["column"], p["reason"]) for p in found] == [
        ("sample_id", "missing sample id"),
        ("depth_m", "not a number"),
        ("item", "unknown item"),
        ("value", lab._BELOW_LIMIT_REASON),
        ("unit", "missing unit (mg/kg, μg/kg, ug/kg, g/kg)"),
        ("background", "not a number"),
    ]
    assert {p["row"] for p in found} == {2}


def test_message_lists_ten_problems_then_counts_the_rest() -> None:
    rows = [HEADER, *[[f"S{i}", 1, "铅", "bad", "mg/kg", ""] for i in range(25)]]
    with pytest.raises(LabResultsError) as caught:
        parse_lab_results(csv_data(rows))
    assert len(caught.value.problems) == 25
    assert caught.value.message.startswith("25 rows have problems: row 2 value 'bad'")
    assert caught.value.message.endswith("; and 15 more")


# --------------------------------------------------------------------------- values, units


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (2500, "μg/kg", 2.5),  # Greek mu
        (2500, "µg/kg", 2.5),  # micro sign
        (2500, "ug/kg", 2.5),
        (2500, "UG/KG", 2.5),
        (0.02, "g/kg", 20.0),
        (20000, "ug/kg", 20.0),
        (8.5, "mg/kg", 8.5),
        (8.5, " Mg/Kg ", 8.5),
        (8.5, "mg·kg⁻¹", 8.5),
        (0.1, "μg/kg", 0.0001),
        (0.3, "g/kg", 300.0),
    ],
)
def test_units_convert_exactly(
    tmp_path: Path, kind: str, value: float, unit: str, expected: float
) -> None:
    [sample] = parse_lab_results(one_row(tmp_path, kind, ["S1", 1, "铅", value, unit, value]))
    assert sample["value_mg_kg"] == expected
    assert sample["background_mg_kg"] == expected  # background is in the row's unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8.5", 8.5),
        (" 8.5 ", 8.5),
        ("1,234.5", 1234.5),
        ("123,456", 123456.0),
        ("1.2E-3", 0.0012),
        ("８.５", 8.5),  # full-width digits
        ("0", 0.0),
        (".5", 0.5),
        ("+3", 3.0),
    ],
)
def test_numeric_text(text: str, expected: float) -> None:
    [sample] = parse_lab_results(csv_data([HEADER, ["S1", "1", "铅", text, "mg/kg", ""]]))
    assert sample["value_mg_kg"] == expected


@pytest.mark.parametrize(
    "text", ["ND", "nd", "N.D.", "未检出", "<0.1", "＜0.1", "< 0.1", "≤0.05", "0.1L", "BDL"]
)
def test_below_detection_limit_is_refused(text: str) -> None:
    problem = only_problem(csv_data([HEADER, ["S1", "1", "铅", text, "mg/kg", ""]]))
    assert problem == {
        "row": 2,
        "column": "value",
        "value": text.strip(),
        "reason": "below detection limit: enter the detection limit or 0 as agreed",
    }


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("8,5", "not a number"),  # decimal comma: ambiguous with thousands
        ("1,23", "not a number"),
        ("nan", "not a number"),
        ("inf", "not a number"),
        ("1_000", "not a number"),
        ("-", "not a number"),
        ("#N/A", "not a number"),
        ("8.5 mg/kg", "not a number"),
        ("-0.5", "must not be negative"),
        ("", "missing value"),
        ("2000000", "above 1,000,000 mg/kg (100 %): check the unit"),
        ("1e99999999", "above 1,000,000 mg/kg (100 %): check the unit"),  # no Decimal overflow
    ],
)
def test_bad_values(text: str, reason: str) -> None:
    problem = only_problem(csv_data([HEADER, ["S1", "1", "铅", text, "mg/kg", ""]]))
    assert (problem["column"], problem["reason"]) == ("value", reason)


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        (True, "not a number"),
        (dt.datetime(2024, 1, 2), "a date, not a number: format the column as number or text"),
        (-1, "must not be negative"),
    ],
)
def test_bad_xlsx_cells(tmp_path: Path, cell: Any, reason: str) -> None:
    problem = only_problem(one_row(tmp_path, "xlsx", ["S1", 1, "铅", cell, "mg/kg", None]))
    assert (problem["row"], problem["column"], problem["reason"]) == (2, "value", reason)


def test_value_limit_applies_after_conversion() -> None:
    rows = [HEADER, ["S1", 1, "铅", "2000000", "ug/kg", "3000000"]]
    [sample] = parse_lab_results(csv_data(rows))
    assert (sample["value_mg_kg"], sample["background_mg_kg"]) == (2000.0, 3000.0)
    found = problems(csv_data([HEADER, ["S1", 1, "铅", "2", "mg/kg", "2000000"]]))
    assert [(p["column"], p["reason"][:14]) for p in found] == [("background", "above 1,000,00")]


@pytest.mark.parametrize(
    ("depth", "expected"), [("", None), ("0", 0.0), ("1.5", 1.5), ("1,000", 1000.0)]
)
def test_depth(depth: str, expected: float | None) -> None:
    [sample] = parse_lab_results(csv_data([HEADER, ["S1", depth, "铅", "1", "mg/kg", ""]]))
    assert sample["depth_m"] == expected


@pytest.mark.parametrize(
    ("depth", "reason"),
    [("0.5-1.0", "not a number"), ("-1", "must not be negative"), ("1001", "deeper than 1000 m")],
)
def test_bad_depth(depth: str, reason: str) -> None:
    problem = only_problem(csv_data([HEADER, ["S1", depth, "铅", "1", "mg/kg", ""]]))
    assert (problem["column"], problem["reason"]) == ("depth_m", reason)


def test_sample_ids(tmp_path: Path) -> None:
    rows = [HEADER, [101, 1, "铅", 1, "mg/kg", None], [" A-7 ", 1, "铅", 1, "mg/kg", None]]
    samples = parse_lab_results(xlsx(tmp_path, rows))
    assert [s["sample_id"] for s in samples] == ["101", "A-7"]
    problem = only_problem(csv_data([HEADER, ["x" * 101, 1, "铅", 1, "mg/kg", ""]]))
    assert problem["reason"] == "longer than 100 characters"


def test_total_chromium_gets_a_specific_reason() -> None:
    problem = only_problem(csv_data([HEADER, ["S1", 1, "总铬", 1, "mg/kg", ""]]))
    assert problem["reason"] == (
        "total chromium is not a GB 36600 item: report hexavalent chromium (六价铬)"
    )


def test_unit_in_the_item_name_is_refused_with_a_hint() -> None:
    problem = only_problem(csv_data([HEADER, ["S1", 1, "铅 mg/kg", 1, "mg/kg", ""]]))
    assert problem["reason"].startswith("unknown item (closest: 铅 (Lead, 7439-92-1)")


# --------------------------------------------------------------------------- header


def test_chinese_headers_any_order_extra_columns_ignored(tmp_path: Path) -> None:
    header = ["备注", "检测项目", "结果", "单位", "样品编号", "深度(m)", "背景值"]
    rows: Rows = [header, ["x", "砷", 30, "mg/kg", "B1", 0.2, 40]]
    [sample] = parse_lab_results(xlsx(tmp_path, rows))
    assert sample == {
        "item": "砷",
        "value_mg_kg": 30.0,
        "depth_m": 0.2,
        "background_mg_kg": 40.0,
        "sample_id": "B1",
    }


@pytest.mark.parametrize(
    "header",
    [
        ["Sample ID", "DEPTH", " Item ", "Value", "UNIT"],
        ["样品编号", "采样深度", "污染物", "检测值", "单位"],
        ["sample_id", "采样深度（m）", "项目", "检测结果", "Unit"],
    ],
)
def test_header_variants_and_optional_background(header: list[str]) -> None:
    [sample] = parse_lab_results(csv_data([header, ["S1", 1, "铅", 900, "mg/kg"]]))
    assert (sample["item"], sample["value_mg_kg"], sample["background_mg_kg"]) == ("铅", 900, None)


@pytest.mark.parametrize("kind", KINDS)
def test_missing_column_is_one_problem_naming_it(tmp_path: Path, kind: str) -> None:
    header = ["sample_id", "depth_m", "item", "value"]
    problem = only_problem(one_row(tmp_path, kind, ["S1", 1, "铅", 1], header))
    assert problem == {
        "row": 1,
        "column": "unit",
        "value": None,
        "reason": "missing column unit (accepted headers: unit, 单位)",
    }


def test_duplicate_column() -> None:
    header = ["sample_id", "depth_m", "item", "value", "unit", "结果"]
    problem = only_problem(csv_data([header, ["S1", 1, "铅", 1, "mg/kg", 2]]))
    assert (problem["row"], problem["column"]) == (1, "结果")
    assert problem["reason"] == "duplicate value column (also 'value')"


@pytest.mark.parametrize("kind", KINDS)
def test_blank_rows_skipped_and_rows_numbered_as_seen(tmp_path: Path, kind: str) -> None:
    rows = [[], HEADER, ["S1", 1, "铅", 1, "mg/kg"], [], [None, None], ["S2", 1, "?", 1, "mg/kg"]]
    problem = only_problem(encode(kind, tmp_path, rows))
    assert (problem["row"], problem["column"], problem["value"]) == (6, "item", "?")
    assert len(parse_lab_results(encode(kind, tmp_path, rows[:3]))) == 1


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize(
    "data",
    [b"", b"\n\n \n", b"\xef\xbb\xbf", b",,,\n , ,\n"],
    ids=["empty", "blank-lines", "bom-only", "delimiters-only"],
)
def test_empty_file_is_one_problem(data: bytes) -> None:
    problem = only_problem(data)
    assert problem["reason"] == "the file is empty: expected a header row and data rows"


def test_empty_workbook_is_one_problem(tmp_path: Path) -> None:
    assert only_problem(xlsx(tmp_path, []))["reason"].startswith("the file is empty")


@pytest.mark.parametrize("kind", KINDS)
def test_header_without_data_is_one_problem(tmp_path: Path, kind: str) -> None:
    problem = only_problem(encode(kind, tmp_path, [HEADER, []]))
    assert (problem["row"], problem["reason"]) == (2, "no data rows below the header")


def test_gb18030_csv() -> None:
    rows = [
        ["样品编号", "采样深度", "检测项目", "检测值", "单位"],
        ["土1", "0.5", "镉", "1.2", "mg/kg"],
    ]
    data = csv_data(rows, encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    [sample] = parse_lab_results(data)
    assert (sample["sample_id"], sample["item"], sample["value_mg_kg"]) == ("土1", "镉", 1.2)


def test_bom_csv() -> None:
    data = csv_data([HEADER, ["S1", 1, "苯并（a）芘", 8.5, "mg/kg", ""]], encoding="utf-8-sig")
    assert data.startswith(b"\xef\xbb\xbf")
    assert parse_lab_results(data)[0]["item"] == "苯并[a]芘"


def test_utf16_tab_separated_export() -> None:
    data = csv_data([HEADER, ["S1", 1, "铅", 9, "mg/kg", ""]], encoding="utf-16", delimiter="\t")
    assert parse_lab_results(data)[0]["value_mg_kg"] == 9.0


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiters(delimiter: str) -> None:
    rows = [HEADER, ["S1", "1", "1,1-二氯乙烷", "3", "mg/kg", ""]]
    [sample] = parse_lab_results(csv_data(rows, delimiter=delimiter))
    assert (sample["item"], sample["value_mg_kg"]) == ("1,1-二氯乙烷", 3.0)


def test_undecodable_text() -> None:
    problem = only_problem(b"sample_id\n\xff\xfe\xff\x80\n")
    assert problem["reason"].startswith("the CSV is neither UTF-8 nor GB18030")


def test_malformed_csv() -> None:
    problem = only_problem(b"a,b\n1,2\n" + b"x" * 200_000)  # over the csv field limit
    assert (problem["row"], problem["reason"][:13]) == (3, "malformed CSV")


def test_format_by_content_media_type_and_name(tmp_path: Path) -> None:
    book = xlsx(tmp_path, [HEADER, ["S1", 1, "铅", 1, "mg/kg"]])
    text = csv_data([HEADER, ["S1", 1, "铅", 1, "mg/kg"]])
    assert parse_lab_results(book, media_type="text/csv")  # a ZIP is never CSV
    assert parse_lab_results(book, filename="results.csv")
    assert parse_lab_results(text, media_type="text/csv; charset=utf-8")
    assert parse_lab_results(text, media_type="application/vnd.ms-excel")  # Windows .csv
    assert parse_lab_results(text, filename="results.CSV")
    for kwargs in ({"media_type": lab.XLSX_MEDIA_TYPE}, {"filename": "results.xlsx"}):
        assert only_problem_of(text, **kwargs).startswith("not a readable XLSX workbook")


def only_problem_of(data: bytes, **kwargs: Any) -> str:
    [problem] = problems(data, **kwargs)
    return str(problem["reason"])


def test_legacy_xls_and_broken_xlsx_are_refused() -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100
    assert only_problem(ole)["reason"].startswith("legacy .xls or password-protected workbook")
    assert only_problem(b"PK\x03\x04 not really a zip")["reason"].startswith(
        "not a readable XLSX workbook"
    )


def test_too_many_data_rows_refused() -> None:
    rows = [HEADER, *[["S", 1, "铅", 1, "mg/kg", ""] for _ in range(lab.MAX_ROWS + 1)]]
    problem = only_problem(csv_data(rows))
    assert problem["reason"] == "too many rows: at most 20,000 data rows per file"
    assert problem["row"] == lab.MAX_ROWS + 2
    assert len(parse_lab_results(csv_data(rows[:-1]))) == lab.MAX_ROWS


def test_too_many_xlsx_rows_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab, "MAX_ROWS", 50)
    rows = [HEADER, *[["S", 1, "铅", 1, "mg/kg"] for _ in range(51)]]
    assert only_problem(xlsx(tmp_path, rows))["reason"].startswith("too many rows: at most 50")


@pytest.mark.parametrize("kind", KINDS)
def test_too_many_columns_refused(tmp_path: Path, kind: str) -> None:
    header = HEADER + [f"extra{i}" for i in range(lab.MAX_COLUMNS + 1 - len(HEADER))]
    problem = only_problem(encode(kind, tmp_path, [header, ["S1", 1, "铅", 1, "mg/kg"]]))
    assert (problem["row"], problem["reason"]) == (1, "too many columns: at most 50")
    assert parse_lab_results(encode(kind, tmp_path, [header[:-1], ["S1", 1, "铅", 1, "mg/kg"]]))


# --------------------------------------------------------------------------- templates

TEMPLATE_SAMPLES = [
    {
        "item": "苯并[a]芘",
        "value_mg_kg": 8.5,
        "depth_m": 1.0,
        "background_mg_kg": None,
        "sample_id": "S1",
    },
    {
        "item": "铅",
        "value_mg_kg": 900.0,
        "depth_m": 0.5,
        "background_mg_kg": None,
        "sample_id": "S2",
    },
    {
        "item": "铬（六价）",
        "value_mg_kg": 2.5,
        "depth_m": 2.0,
        "background_mg_kg": None,
        "sample_id": "S3",
    },
]


@pytest.mark.parametrize("name", ["lab-results-template.csv", "lab-results-template.xlsx"])
def test_templates_parse(name: str) -> None:
    path = TEMPLATES / name
    assert parse_lab_results(path.read_bytes(), filename=name) == TEMPLATE_SAMPLES


def test_templates_are_current() -> None:
    """The committed templates are what make_template.py writes (re-run it if this fails)."""
    assert (TEMPLATES / "lab-results-template.csv").read_text("utf-8-sig") == (
        make_template.csv_text()
    )
    assert (TEMPLATES / "lab-results-template.xlsx").read_bytes() == make_template.xlsx_bytes()


# --------------------------------------------------------------------------- speed


@pytest.mark.parametrize("kind", KINDS)
def test_5000_rows_parse_whole(tmp_path: Path, kind: str) -> None:
    """How fast is a benchmark row (bench/lab_results_bench.py), not a timed test."""
    data = encode(kind, tmp_path, [HEADER, *lab_file(5000)])
    assert len(parse_lab_results(data)) == 5000
