"""Reads CSV and JSONL files of posts row by row, keeping good rows and reporting bad ones."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tuneloop.errors import InvalidInputError, Problem
from tuneloop.posts.schema import REQUIRED_FIELDS, PostIn, describe_errors


@dataclass
class ImportReport:
    """What an import accepted and what it rejected, by line."""

    read: int = 0
    accepted: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.problems)


def detect_format(path: Path, explicit: str | None = None) -> str:
    fmt = (explicit or path.suffix.lstrip(".")).lower()
    if fmt in ("jsonl", "ndjson"):
        return "jsonl"
    if fmt == "csv":
        return "csv"
    raise InvalidInputError(
        f"{path}: cannot tell the format from '{path.suffix}'; use .csv or .jsonl, or --format"
    )


def read_posts(path: Path, report: ImportReport, fmt: str | None = None) -> Iterator[PostIn]:
    """Yield valid posts from ``path``; every invalid line is added to ``report.problems``."""
    fmt = detect_format(path, fmt)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read file ({exc.strerror})") from None
    if not raw.strip():
        raise InvalidInputError(f"{path}: the file is empty")
    lines = _decode_lines(raw, path, report)
    rows = _csv_rows(lines, path) if fmt == "csv" else _jsonl_rows(lines)
    for line_no, row in rows:
        report.read += 1
        if isinstance(row, str):
            report.problems.append(Problem(f"line {line_no}", row))
            continue
        try:
            post = PostIn.model_validate(row)
        except ValidationError as exc:
            for reason in describe_errors(exc):
                report.problems.append(Problem(f"line {line_no}", reason))
            continue
        report.accepted += 1
        yield post


def _decode_lines(raw: bytes, path: Path, report: ImportReport) -> list[tuple[int, str]]:
    """Split into lines, decoding each as UTF-8; a line that is not UTF-8 is reported, not fatal."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    decoded: list[tuple[int, str]] = []
    for number, chunk in enumerate(raw.splitlines(keepends=True), start=1):
        try:
            decoded.append((number, chunk.decode("utf-8")))
        except UnicodeDecodeError as exc:
            report.read += 1
            report.problems.append(
                Problem(f"line {number}", f"not valid UTF-8 (byte {exc.start}): line skipped")
            )
    return decoded


Row = dict[str, object] | str  # a parsed row, or the reason it could not be parsed
MAX_FIELD = 131_072  # characters in one CSV field (csv's own default limit): longer is a bad row
PARSE_FIELD_LIMIT = 64 * 1024 * 1024  # what the parser may read before judging the length


def _jsonl_rows(lines: Iterable[tuple[int, str]]) -> Iterator[tuple[int, Row]]:
    for number, text in lines:
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, f"not valid JSON ({exc.msg})"
            continue
        yield number, value if isinstance(value, dict) else "expected a JSON object"


def _csv_rows(lines: list[tuple[int, str]], path: Path) -> Iterator[tuple[int, Row]]:
    if not lines:
        raise InvalidInputError(f"{path}: no readable lines")
    header_no, header_line = lines[0]
    header = next(csv.reader([header_line]))
    header = [name.strip() for name in header]
    missing = [name for name in REQUIRED_FIELDS if name not in header]
    if missing:
        raise InvalidInputError(
            f"{path}: the header (line {header_no}) lacks required columns: {', '.join(missing)}",
            [Problem(f"line {header_no}", f"missing column '{name}'") for name in missing],
        )
    # Re-join the decoded lines so quoted fields spanning lines still parse; keep line numbers.
    text = "".join(line for _, line in lines[1:])
    _allow_long_fields()
    reader = csv.reader(io.StringIO(text))
    numbers = [number for number, _ in lines[1:]]
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # its message names the problem, never the row's contents
            yield _line(reader, numbers, header_no), f"unreadable CSV row ({exc})"
            continue
        line_no = _line(reader, numbers, header_no)
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield line_no, f"{len(row)} fields where the header has {len(header)}"
            continue
        too_long = [name for name, cell in zip(header, row, strict=True) if len(cell) > MAX_FIELD]
        if too_long:
            yield line_no, f"field '{too_long[0]}' is longer than {MAX_FIELD} characters"
            continue
        yield line_no, dict(zip(header, row, strict=True))


def _line(reader: Any, numbers: list[int], header_no: int) -> int:
    return numbers[min(reader.line_num - 1, len(numbers) - 1)] if numbers else header_no


def _allow_long_fields() -> None:
    """Let the parser read fields past csv's default 128 KiB (a process-wide setting), so a
    long one is reported by name as one bad row instead of stopping the whole file."""
    if csv.field_size_limit() < PARSE_FIELD_LIMIT:
        csv.field_size_limit(PARSE_FIELD_LIMIT)
