"""Write lab-results-template.csv and .xlsx here: `python -m rules.templates.make_template`.

Both carry the header row rules.lab_results reads and three example rows; the XLSX adds a
second sheet listing the columns, units, value rules and every accepted item name. The
output is byte-for-byte reproducible (fixed document dates and ZIP entry times), so a
re-run changes the committed files only when the tables or synonyms change.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.writer.excel import ExcelWriter

from rules import gb_standards, item_names, lab_results

HERE = Path(__file__).resolve().parent
CSV_PATH = HERE / "lab-results-template.csv"
XLSX_PATH = HERE / "lab-results-template.xlsx"

HEADER = ["sample_id", "depth_m", "item", "value", "unit", "background"]
EXAMPLES: list[list[Any]] = [
    ["S1", 1.0, "苯并[a]芘", 8.5, "mg/kg", None],
    ["S2", 0.5, "铅", 900, "mg/kg", None],
    ["S3", 2.0, "六价铬", 2500, "μg/kg", None],
]
_FIXED = dt.datetime(2024, 1, 1)

COLUMN_HELP = {
    "sample_id": "样品编号 sample id (required in every row)",
    "depth_m": "采样深度 sampling depth in metres (may be blank)",
    "item": "检测项目 item: Chinese or English name or CAS number (see below)",
    "value": "检测值 measured value; ND / 未检出 / <0.1 / 0.1L are refused: "
    "enter the detection limit or 0 as agreed",
    "unit": "单位 unit of value and background: " + ", ".join(lab_results.UNITS),
    "background": "背景值 local background value, same unit (optional; As, Co, V exemption)",
}


def csv_text() -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(["" if cell is None else cell for cell in row] for row in EXAMPLES)
    return out.getvalue()


NAME_NOTE = (
    "Item names match ignoring case, spaces and full-/half-width brackets and dashes "
    "(苯并(a)芘 = 苯并［a］芘). Total chromium (铬, 总铬) is not a GB 36600 item: report 六价铬. "
    "Do not put the unit into the item name."
)


def _instructions(book: Workbook) -> None:
    sheet = book.create_sheet("说明 instructions")
    sheet.append(["column 列", "accepted headers 可用表头", "meaning 说明"])
    for field, headers in lab_results.COLUMNS.items():
        sheet.append([field, ", ".join(headers), COLUMN_HELP[field]])
    sheet.append([])
    sheet.append([NAME_NOTE])
    sheet.append(["table 表", "no 序号", "项目", "item", "CAS", "other accepted names 其他写法"])
    heading_rows = (1, sheet.max_row)
    for item in gb_standards.construction_items():
        names = ", ".join(item_names.SYNONYMS.get(item["item_zh"], ()))
        sheet.append(
            [item["table"], item["no"], item["item_zh"], item["item_en"], item["cas"] or "", names]
        )
    for row in heading_rows:
        for cell in sheet[row]:
            cell.font = Font(bold=True)
    for letter, width in zip("ABCDEF", (12, 40, 30, 32, 22, 60), strict=True):
        sheet.column_dimensions[letter].width = width


def workbook() -> Workbook:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "检测结果 results"
    sheet.append(HEADER)
    for row in EXAMPLES:
        sheet.append(row)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    _instructions(book)
    book.properties.creator = "landflow"
    book.properties.created = book.properties.modified = _FIXED
    return book


def xlsx_bytes() -> bytes:
    """The workbook with fixed ZIP entry times (openpyxl stamps entries with the clock)."""
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(workbook(), archive).save()
    fixed = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(raw.getvalue())) as source,
        zipfile.ZipFile(fixed, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=_FIXED.timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(entry, source.read(info.filename))
    return fixed.getvalue()


def main() -> None:
    # UTF-8 with BOM: Excel on Chinese Windows reads BOM-less CSV as GBK and garbles it.
    CSV_PATH.write_text(csv_text(), encoding="utf-8-sig", newline="")
    XLSX_PATH.write_bytes(xlsx_bytes())
    print(f"wrote {CSV_PATH} and {XLSX_PATH}")


if __name__ == "__main__":
    main()
