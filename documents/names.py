"""Uploaded file names made safe to store, show and send back in a header.

A name is the uploader's text, kept for people (Chinese included); it never becomes a path,
since blobs are stored by digest. What is removed is what could mislead or break something:
directories, control and bidi characters (a U+202E can make `gpj.exe` read as `exe.jpg`),
leading dots (hidden files) and characters Windows refuses in a name.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

DEFAULT_STEM = "document"
MIN_LENGTH = 16

# An extension is a dot, a letter, then up to 7 letters or digits: "v1.2" or
# "2024.03.15 报告" have none, so truncation and type checks leave them alone.
_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,7}$")
_WHITESPACE = re.compile(r"\s+")
_WINDOWS_RESERVED = re.compile(r'[<>:"|?*]')
_ASCII_UNSAFE = re.compile(r"[^A-Za-z0-9 ._()\[\]+,-]")


def split_extension(name: str) -> tuple[str, str]:
    """(stem, extension) with the extension's dot, or "" when the name has none."""
    match = _EXTENSION.search(name)
    return (name[: match.start()], match.group()) if match else (name, "")


def _visible(char: str) -> bool:
    # Category C: controls (NUL, ESC...), format characters (bidi overrides U+202A-U+202E
    # and isolates U+2066-U+2069, zero-width characters, BOM), surrogates, private use.
    return not unicodedata.category(char).startswith("C")


def sanitize_filename(name: str, *, max_length: int = 120) -> str:
    """A single, visible, NFC-normalised file name of at most `max_length` characters.

    Truncation keeps the extension; a name with nothing left becomes "document" plus the
    extension, so `../../.pdf` is `document.pdf`.
    """
    if max_length < MIN_LENGTH:
        raise ValueError(f"max_length must be at least {MIN_LENGTH}")
    base = name.replace("\\", "/").rpartition("/")[2]
    base = _WHITESPACE.sub(" ", base)
    base = "".join(c for c in base if _visible(c))
    base = _WINDOWS_RESERVED.sub("_", unicodedata.normalize("NFC", base))
    stem, extension = split_extension(base)
    # Trailing dots and spaces too: Windows drops them, so "a.pdf." would save as "a.pdf".
    stem = stem.strip(" .")
    stem = stem[: max_length - len(extension)].rstrip(" .") or DEFAULT_STEM
    return stem + extension


def content_disposition(filename: str, inline: bool = False) -> str:
    """A Content-Disposition value (RFC 6266) with an ASCII fallback and `filename*` (RFC 5987).

    The name is sanitised first, so no caller can smuggle CR/LF or quotes into the header.
    """
    name = sanitize_filename(filename)
    stem, extension = split_extension(name)
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    ascii_stem = _WHITESPACE.sub(" ", _ASCII_UNSAFE.sub("_", ascii_stem)).strip(" ._")
    fallback = (ascii_stem or DEFAULT_STEM) + extension
    disposition = "inline" if inline else "attachment"
    encoded = quote(name, safe="!#$&+-.^_`|~")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
