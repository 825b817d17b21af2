"""Media types by content, never by the name or the Content-Type a client declares.

Only ALLOWED_MEDIA_TYPES may be stored. A ZIP container (OFD, DOCX, XLSX) is told apart by
its central directory, which sits at the end of the file: `sniff` can classify one only if
the head holds the whole file, `sniff_file` always can. Only the directory is read, never an
entry, so a ZIP bomb costs nothing here.
"""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from collections.abc import Iterable
from typing import BinaryIO

import filetype

from documents.names import split_extension

PDF = "application/pdf"
OFD = "application/ofd"
PNG = "image/png"
JPEG = "image/jpeg"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv"
TEXT = "text/plain"
ALLOWED_MEDIA_TYPES = frozenset({PDF, OFD, PNG, JPEG, DOCX, XLSX, CSV})

EXTENSIONS: dict[str, frozenset[str]] = {
    PDF: frozenset({".pdf"}),
    OFD: frozenset({".ofd"}),
    PNG: frozenset({".png"}),
    JPEG: frozenset({".jpg", ".jpeg"}),
    DOCX: frozenset({".docx"}),
    XLSX: frozenset({".xlsx"}),
    CSV: frozenset({".csv"}),
}
# What browsers and office systems really send for each type; Windows browsers send
# application/vnd.ms-excel for .csv, and text/plain is common too.
DECLARED_ALIASES: dict[str, frozenset[str]] = {
    PDF: frozenset({PDF, "application/x-pdf"}),
    OFD: frozenset({OFD}),
    PNG: frozenset({PNG}),
    JPEG: frozenset({JPEG, "image/jpg", "image/pjpeg"}),
    DOCX: frozenset({DOCX}),
    XLSX: frozenset({XLSX}),
    CSV: frozenset({CSV, "application/csv", TEXT, "application/vnd.ms-excel"}),
}
# Declarations that claim nothing: a client that does not know says one of these.
UNDECLARED = frozenset({"", "application/octet-stream", "binary/octet-stream"})

HEAD_BYTES = 8192
_ZIP_MAGIC = b"PK\x03\x04"
# filetype's own PNG and JPEG matchers; not its guess(), which would call an animated PNG
# image/apng and tries dozens of types we refuse anyway.
_IMAGES = tuple((filetype.get_type(mime=media_type), media_type) for media_type in (PNG, JPEG))
_TEXT_ENCODINGS = ("utf-8", "gb18030")
# Control bytes no CSV has (tab, LF, FF and CR are fine); none of them is ever part of a
# multi-byte UTF-8 or GB18030 character, so the raw bytes can be checked.
_BINARY_BYTES = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")


class MediaTypeMismatch(ValueError):
    """The content is not an allowed type, or its name or declared type says otherwise."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sniff(head: bytes, filename: str = "") -> str | None:
    """The media type of a file from its first bytes, or None when it cannot tell.

    Text is text/csv when the name ends in .csv, else text/plain (which is not allowed).
    """
    if not head:
        return None
    if head.startswith(b"%PDF-"):
        return PDF
    for matcher, media_type in _IMAGES:
        if matcher.match(head):
            return media_type
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(io.BytesIO(head)) as archive:
                return _zip_type(archive.namelist())
        except zipfile.BadZipFile:
            return None  # the central directory is past the head: use sniff_file
    return _text_type(filename) if _is_text([head], complete=False) else None


def sniff_file(fileobj: BinaryIO, filename: str = "") -> str | None:
    """As `sniff`, reading as much of a seekable file as it needs; the position is restored.

    A text file is decoded to its end, so a binary tail after a text-looking head is caught.
    """
    position = fileobj.tell()
    try:
        fileobj.seek(0)
        head = fileobj.read(HEAD_BYTES)
        if head.startswith(_ZIP_MAGIC):
            fileobj.seek(0)
            try:
                with zipfile.ZipFile(fileobj) as archive:
                    return _zip_type(archive.namelist())
            except zipfile.BadZipFile:
                return None
        media_type = sniff(head, filename)
        if media_type not in (CSV, TEXT):
            return media_type
        fileobj.seek(0)
        return media_type if _is_text(iter(lambda: fileobj.read(HEAD_BYTES), b"")) else None
    finally:
        fileobj.seek(position)


def _zip_type(names: list[str]) -> str | None:
    """OFD has OFD.xml at the root; DOCX and XLSX an OOXML manifest and their own parts.

    A container that claims two kinds at once is a polyglot and gets no type.
    """
    kinds: set[str] = set()
    if "OFD.xml" in names:
        kinds.add(OFD)
    if "[Content_Types].xml" in names:
        if any(n.startswith("word/") for n in names):
            kinds.add(DOCX)
        if any(n.startswith("xl/") for n in names):
            kinds.add(XLSX)
    return kinds.pop() if len(kinds) == 1 else None


def _is_text(chunks: Iterable[bytes], complete: bool = True) -> bool:
    """No NUL or other control byte, and the whole is valid UTF-8 or GB18030.

    When not `complete` (a head), a multi-byte character cut at the end is not an error.
    """
    decoders = {name: codecs.getincrementaldecoder(name)() for name in _TEXT_ENCODINGS}
    for chunk in chunks:
        if _BINARY_BYTES.search(chunk):
            return False
        for name, decoder in list(decoders.items()):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                del decoders[name]
        if not decoders:
            return False
    if complete:
        for name, decoder in list(decoders.items()):
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                del decoders[name]
    return bool(decoders)


def _text_type(filename: str) -> str:
    return CSV if split_extension(filename)[1].lower() == ".csv" else TEXT


def _declared(content_type: str | None) -> str:
    return (content_type or "").partition(";")[0].strip().lower()


def check_declared(sniffed: str | None, declared_content_type: str | None, filename: str) -> None:
    """Raise MediaTypeMismatch unless the content is allowed and nothing contradicts it.

    The extension counts only when the name has one (see names.split_extension); a declared
    type counts unless it is one of UNDECLARED.
    """
    if sniffed is None or sniffed not in ALLOWED_MEDIA_TYPES:
        found = f"the content is {sniffed}" if sniffed else "the content's type is not recognised"
        allowed = "PDF, OFD, PNG, JPEG, DOCX, XLSX or CSV"
        raise MediaTypeMismatch(f"{found}; allowed: {allowed}")
    declared = _declared(declared_content_type)
    if declared not in UNDECLARED and declared not in DECLARED_ALIASES[sniffed]:
        raise MediaTypeMismatch(f"declared as {declared} but the content is {sniffed}")
    extension = split_extension(filename)[1].lower()
    if extension and extension not in EXTENSIONS[sniffed]:
        raise MediaTypeMismatch(f"named {extension} but the content is {sniffed}")
