"""Lab-result spreadsheets (XLSX or CSV) -> validated GB 36600 samples.

:func:`parse_lab_results` returns every sample or raises :class:`LabResultsError` listing
every problem in the file at once; it never returns part of a file.

Layout: the first non-blank row of the first sheet is the header; rows are numbered as
the lab sees them in Excel (header usually row 1); blank rows are skipped. Columns are
found by header, in any order, Chinese or English, case- and space-insensitive (see
:data:`COLUMNS`); other columns are ignored. Item names: :func:`rules.item_names.match_item`.

Values: numbers or numeric text (``8.5``, ``1,234.5``, ``1.2E-3``, full-width digits),
finite, not negative, at most 1,000,000 mg/kg (100 %, so a larger figure is a unit
mix-up). Units: mg/kg, μg/kg (Greek mu or micro sign), ug/kg, g/kg, also written
``mg·kg-1``, case-insensitive; a blank unit is refused rather than assumed mg/kg, since a
wrong guess is a factor of 1000. The background value is in the row's unit. Conversion
is exact in decimal (2500 μg/kg -> 2.5 mg/kg), as in :mod:`rules.gb_standards`.

Detection limits: ``ND``, ``未检出``, ``<0.1``, ``≤0.1``, ``0.1L`` (the Chinese "below the
limit" mark) are refused with "below detection limit: enter the detection limit or 0 as
agreed". Reading ``<x`` as x or as 0 is a judgement for the assessor (a detection limit
above the screening value would turn into an exceedance, 0 may hide one), so the parser
does not make it silently.

Format: an XLSX (ZIP) signature in the content wins, because a CSV cannot start with it
and browsers label uploads by extension (Windows sends application/vnd.ms-excel for
.csv); then ``media_type``; then the file name; else CSV. Legacy .xls and encrypted
workbooks (OLE files) are refused. CSV: UTF-8 with or without BOM, else GB18030 (Chinese
Excel), UTF-16 with BOM; delimiter ``,`` ``;`` or tab, whichever the header line uses
most. Limits: 20,000 data rows, 50 columns.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import unicodedata
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

import openpyxl

from rules import item_names

MAX_ROWS = 20_000
MAX_COLUMNS = 50
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

#: Field -> accepted headers (compared after :func:`_header_key`).
COLUMNS: dict[str, tuple[str, ...]] = {
    "sample_id": ("sample_id", "样品编号"),
    "depth_m": ("depth_m", "depth", "采样深度", "深度(m)", "采样深度(m)"),
    "item": ("item", "检测项目", "项目", "污染物"),
    "value": ("value", "检测值", "结果", "检测结果"),
    "unit": ("unit", "单位"),
    "background": ("background", "background_mg_kg", "背景值"),
}
OPTIONAL_COLUMNS = frozenset({"background"})

#: Accepted units (shown in messages) -> factor to mg/kg.
UNITS: dict[str, Decimal] = {
    "mg/kg": Decimal(1),
    "μg/kg": Decimal("0.001"),
    "ug/kg": Decimal("0.001"),
    "g/kg": Decimal(1000),
}

_MAX_MG_KG = Decimal(1_000_000)
_MAX_DEPTH_M = Decimal(1000)
_MAX_SAMPLE_ID = 100
_SCAN_ROWS = 5 * MAX_ROWS  # physical rows read, blank ones included
_SHOWN = 10  # problems spelled out in the message
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MEDIA_TYPES = {"text/csv": "csv", "application/csv": "csv", XLSX_MEDIA_TYPE: "xlsx"}
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?", re.IGNORECASE)
_THOUSANDS = re.compile(r"\d{1,3}(,\d{3})+(\.\d+)?")
_BELOW_LIMIT = re.compile(r"[<≤]|nd\b|n\.d|bdl|未检出|低于检出限|检出限以下|.*\dl$")
_BELOW_LIMIT_REASON = "below detection limit: enter the detection limit or 0 as agreed"

Problem = dict[str, Any]


class LabResultsError(ValueError):
    """A lab file that cannot be used; ``problems`` lists every problem found.

    Each problem: {"row": 1-based row as shown in Excel, "column": header as written (or
    the expected column name), "value": the cell as text or None, "reason": str}.
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        self.message = _summary(problems)
        super().__init__(self.message)


class _Bad(Exception):
    """One cell's problem, caught per cell so that every cell of every row is checked."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- messages


def _describe(problem: Problem) -> str:
    where = " ".join(part for part in (f"row {problem['row']}", problem["column"]) if part)
    if problem["value"] is not None:
        where += f" {problem['value']!r}"
    return f"{where}: {problem['reason']}"


def _summary(problems: list[Problem]) -> str:
    """``3 rows have problems: row 5 item '苯并a]芘': unknown item (closest: ...); ...``."""
    rows = len({p["row"] for p in problems})
    listed = "; ".join(_describe(p) for p in problems[:_SHOWN])
    more = f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
    return f"{rows} {'row has' if rows == 1 else 'rows have'} problems: {listed}{more}"


def _file_error(reason: str, row: int = 1) -> LabResultsError:
    return LabResultsError([{"row": row, "column": "", "value": None, "reason": reason}])


# --------------------------------------------------------------------------- reading


def _format(data: bytes, filename: str, media_type: str | None) -> str:
    if data.startswith(_OLE_MAGIC):
        raise _file_error(
            "legacy .xls or password-protected workbook: save as unprotected .xlsx or CSV"
        )
    if data.startswith(_ZIP_MAGIC):
        return "xlsx"
    declared = _MEDIA_TYPES.get((media_type or "").split(";")[0].strip().lower())
    if declared:
        return declared
    return "xlsx" if filename.lower().endswith((".xlsx", ".xlsm")) else "csv"


def _xlsx_rows(data: bytes) -> Iterator[list[Any]]:
    """Rows of the first sheet, at most MAX_COLUMNS + 1 cells wide (enough to see excess)."""
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # untrusted input: openpyxl raises many kinds on corrupt files
        raise _file_error(f"not a readable XLSX workbook ({type(exc).__name__})") from exc
    try:
        if not book.worksheets:
            raise _file_error("the workbook has no worksheet")
        yield from _sheet_rows(book.worksheets[0])
    finally:
        book.close()


def _sheet_rows(sheet: Any) -> Iterator[list[Any]]:
    try:
        for row in sheet.iter_rows(max_col=MAX_COLUMNS + 1, values_only=True):
            yield list(row)
    except Exception as exc:  # corrupt sheet XML surfaces only while iterating
        raise _file_error(f"unreadable worksheet ({type(exc).__name__})") from exc


def _decode(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings: tuple[str, ...] = ("utf-16",)
    else:
        encodings = ("utf-8-sig", "gb18030")
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _file_error("the CSV is neither UTF-8 nor GB18030 text: save it as CSV UTF-8")


def _delimiter(text: str) -> str:
    """``,`` ``;`` or tab: whichever the first non-blank line has most of (``,`` on a tie)."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return max(",;\t", key=first.count)


def _csv_rows(data: bytes) -> Iterator[list[Any]]:
    text = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    read = 0
    try:
        for row in reader:
            read += 1
            yield row[: MAX_COLUMNS + 1]
    except csv.Error as exc:
        raise _file_error(f"malformed CSV: {exc}", read + 1) from exc


def _blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _table(rows: Iterator[list[Any]]) -> list[tuple[int, list[Any]]]:
    """Non-blank rows with their 1-based row numbers; refuses more than MAX_ROWS data rows."""
    table: list[tuple[int, list[Any]]] = []
    for number, cells in enumerate(rows, 1):
        if number > _SCAN_ROWS:
            raise _too_many_rows(number)
        if not all(_blank(cell) for cell in cells):
            table.append((number, cells))
            if len(table) > MAX_ROWS + 1:  # the header and MAX_ROWS data rows
                raise _too_many_rows(number)
    return table


def _too_many_rows(number: int) -> LabResultsError:
    return _file_error(f"too many rows: at most {MAX_ROWS:,} data rows per file", number)


# --------------------------------------------------------------------------- header


def _header_key(text: Any) -> str:
    return item_names.normalize(str(text)).replace("_", "")


_HEADERS = {_header_key(h): field for field, headers in COLUMNS.items() for h in headers}


def _columns(number: int, header: list[Any]) -> dict[str, tuple[int, str]]:
    """Field -> (cell index, header as written); raises on missing, duplicate or excess."""
    width = max((i + 1 for i, cell in enumerate(header) if not _blank(cell)), default=0)
    if width > MAX_COLUMNS:
        raise _file_error(f"too many columns: at most {MAX_COLUMNS}", number)
    columns: dict[str, tuple[int, str]] = {}
    problems: list[Problem] = []
    for index, cell in enumerate(header[:width]):
        written = "" if cell is None else str(cell).strip()
        field = _HEADERS.get(_header_key(written))
        if field is None:
            continue
        if field in columns:
            reason = f"duplicate {field} column (also {columns[field][1]!r})"
            problems.append({"row": number, "column": written, "value": None, "reason": reason})
        columns.setdefault(field, (index, written))
    for field in COLUMNS:
        if field not in columns and field not in OPTIONAL_COLUMNS:
            reason = f"missing column {field} (accepted headers: {', '.join(COLUMNS[field])})"
            problems.append({"row": number, "column": field, "value": None, "reason": reason})
    if problems:
        raise LabResultsError(problems)
    return columns


# --------------------------------------------------------------------------- cells


def _shown(cell: Any) -> str | None:
    return None if _blank(cell) else str(cell).strip()


def _decimal(cell: Any, missing: str | None) -> Decimal | None:
    """A finite, non-negative number from a cell; blank -> None, or _Bad(missing) if given."""
    if _blank(cell):
        if missing:
            raise _Bad(missing)
        return None
    if isinstance(cell, bool):
        raise _Bad("not a number")
    if isinstance(cell, dt.datetime | dt.date | dt.time):
        raise _Bad("a date, not a number: format the column as number or text")
    number = Decimal(repr(cell)) if isinstance(cell, int | float) else _text_number(str(cell))
    if not number.is_finite():
        raise _Bad("not a finite number")
    if number < 0:
        raise _Bad("must not be negative")
    return number


def _text_number(text: str) -> Decimal:
    text = "".join(unicodedata.normalize("NFKC", text).split()).casefold()
    if _BELOW_LIMIT.match(text):
        raise _Bad(_BELOW_LIMIT_REASON)
    if _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    if not _NUMBER.fullmatch(text):
        raise _Bad("not a number")
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - _NUMBER admits only valid text
        raise _Bad("not a number") from exc


def _sample_id(cell: Any) -> str:
    if _blank(cell):
        raise _Bad("missing sample id")
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)  # Excel stores the id 101 as 101.0
    text = str(cell).strip()
    if len(text) > _MAX_SAMPLE_ID:
        raise _Bad(f"longer than {_MAX_SAMPLE_ID} characters")
    return text


def _item(cell: Any) -> str:
    if _blank(cell):
        raise _Bad("missing item")
    name = str(cell)
    item = item_names.match_item(name)
    if item is not None:
        return str(item["item_zh"])
    if item_names.match_farmland_item(name) == "Cr":
        raise _Bad("total chromium is not a GB 36600 item: report hexavalent chromium (六价铬)")
    closest = item_names.suggest(name)
    raise _Bad("unknown item" + (f" (closest: {'; '.join(closest)})" if closest else ""))


_UNIT_KEYS = {
    item_names.normalize(f"{prefix}{suffix}"): factor
    for unit, factor in UNITS.items()
    for prefix in {unit.removesuffix("/kg"), unit.removesuffix("/kg").replace("μ", "µ")}
    for suffix in ("/kg", "·kg-1", "kg-1")
}


def _unit(cell: Any) -> Decimal:
    accepted = ", ".join(UNITS)
    if _blank(cell):
        raise _Bad(f"missing unit ({accepted})")
    factor = _UNIT_KEYS.get(item_names.normalize(str(cell)))
    if factor is None:
        raise _Bad(f"unknown unit; accepted: {accepted}")
    return factor


def _depth(cell: Any) -> float | None:
    depth = _decimal(cell, None)
    if depth is not None and depth > _MAX_DEPTH_M:
        raise _Bad(f"deeper than {_MAX_DEPTH_M} m")
    return None if depth is None else float(depth)


def _mg_kg(number: Decimal | None, factor: Decimal | None) -> float | None:
    """Exact conversion; None when there is nothing to convert or the unit was refused.

    The limit is checked before multiplying: ``1e99999999`` would overflow the context.
    """
    if number is None or factor is None:
        return None
    if number > _MAX_MG_KG / factor:
        raise _Bad("above 1,000,000 mg/kg (100 %): check the unit")
    return float(number * factor)


# --------------------------------------------------------------------------- rows


def _row(
    number: int, cells: list[Any], columns: dict[str, tuple[int, str]]
) -> tuple[dict[str, Any] | None, list[Problem]]:
    """(sample, []) for a good data row, else (None, a problem per bad cell, left to right)."""
    problems: list[tuple[int, Problem]] = []

    def parse(field: str, parser: Callable[[Any], Any]) -> Any:
        if field not in columns:
            return None
        index, header = columns[field]
        raw = cells[index] if index < len(cells) else None
        try:
            return parser(raw)
        except _Bad as bad:
            problem = {"row": number, "column": header, "value": _shown(raw), "reason": bad.reason}
            problems.append((index, problem))
            return None

    factor = parse("unit", _unit)
    sample = {
        "item": parse("item", _item),
        "value_mg_kg": parse("value", lambda raw: _mg_kg(_decimal(raw, "missing value"), factor)),
        "depth_m": parse("depth_m", _depth),
        "background_mg_kg": parse("background", lambda raw: _mg_kg(_decimal(raw, None), factor)),
        "sample_id": parse("sample_id", _sample_id),
    }
    if problems:
        problems.sort(key=lambda found: found[0])
        return None, [problem for _, problem in problems]
    return sample, []


def parse_lab_results(
    data: bytes, *, filename: str = "", media_type: str | None = None
) -> list[dict[str, Any]]:
    """Samples {item, value_mg_kg, depth_m, background_mg_kg, sample_id} of a lab file.

    ``item`` is the GB 36600 table's Chinese name, values are in mg/kg. Raises
    :class:`LabResultsError` with every problem of the file if anything is wrong.
    """
    kind = _format(data, filename, media_type)
    table = _table(_xlsx_rows(data) if kind == "xlsx" else _csv_rows(data))
    if not table:
        raise _file_error("the file is empty: expected a header row and data rows")
    (header_number, header), body = table[0], table[1:]
    columns = _columns(header_number, header)
    if not body:
        raise _file_error("no data rows below the header", header_number + 1)
    samples: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for number, cells in body:
        sample, row_problems = _row(number, cells, columns)
        problems += row_problems
        if sample is not None:
            samples.append(sample)
    if problems:
        raise LabResultsError(problems)
    return samples
