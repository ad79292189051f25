"""The posts importer: every bad-input case is reported with its line; good rows are kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuneloop.errors import InvalidInputError
from tuneloop.posts.importer import ImportReport, read_posts

HEADER = "id,persona_id,hook,body,engagement_rate,ts\n"


def run(path: Path) -> tuple[list[str], ImportReport]:
    report = ImportReport()
    ids = [post.id for post in read_posts(path, report)]
    return ids, report


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_good_csv_rows_are_read_with_aware_timestamps(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.csv",
        HEADER + "a,coach,Hook,Body,0.1,2026-11-01T10:00:00\n"
        'b,,"Hook, with comma","Body\nover two lines",,2026-11-01T10:00:00+02:00\n',
    )
    report = ImportReport()
    posts = list(read_posts(path, report))
    assert [p.id for p in posts] == ["a", "b"]
    assert posts[0].ts.tzinfo is not None and posts[1].ts.hour == 8
    assert posts[1].persona_id is None and posts[1].engagement_rate is None
    assert posts[1].body == "Body\nover two lines"
    assert report.rejected == 0


def test_bad_rows_are_reported_by_line_and_good_rows_kept(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.csv",
        HEADER
        + "a,coach,Hook,Body,0.1,2026-11-01T10:00:00\n"  # line 2 ok
        + "b,coach,Hook,Body,1.5,2026-11-01T10:00:00\n"  # line 3 rate > 1
        + "c,coach,Hook,Body,lots,2026-11-01T10:00:00\n"  # line 4 not a number
        + "d,coach,Hook,Body,0.2,yesterday\n"  # line 5 bad ts
        + "e,coach,,Body,0.2,2026-11-01T10:00:00\n"  # line 6 empty hook
        + "f,coach,Hook,Body,0.2\n"  # line 7 too few fields
        + "g,coach,Hook,Body,-0.1,2026-11-01T10:00:00\n",
    )  # line 8 rate < 0
    ids, report = run(path)
    assert ids == ["a"]
    by_line = {p.where: p.reason for p in report.problems}
    assert "engagement_rate" in by_line["line 3"] and "less than or equal to 1" in by_line["line 3"]
    assert "engagement_rate" in by_line["line 4"]
    assert "ts" in by_line["line 5"]
    assert "hook" in by_line["line 6"]
    assert "fields where the header has" in by_line["line 7"]
    assert "greater than or equal to 0" in by_line["line 8"]
    assert report.read == 7 and report.accepted == 1


def test_missing_required_columns_name_them(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "id,hook,engagement_rate\nx,y,0.1\n")
    with pytest.raises(InvalidInputError, match="lacks required columns: body, ts"):
        run(path)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        run(write(tmp_path, "p.jsonl", "\n  \n"))


def test_non_utf8_lines_are_reported_and_others_kept(tmp_path: Path) -> None:
    good = '{"id": "a", "hook": "H", "body": "B", "ts": "2026-11-01T00:00:00Z"}\n'
    path = write(
        tmp_path,
        "p.jsonl",
        good.encode() + b'{"id": "b", "hook": "caf\xe9"}\n' + good.replace('"a"', '"c"').encode(),
    )
    ids, report = run(path)
    assert ids == ["a", "c"]
    assert report.problems[0].where == "line 2" and "UTF-8" in report.problems[0].reason


def test_jsonl_wrong_types_and_bad_json(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.jsonl",
        '{"id": "a", "hook": "H", "body": "B", "ts": "2026-11-01T00:00:00Z", "impressions": 10}\n'
        '{"id": "b", "hook": "H", "body": "B", "ts": "2026-11-01T00:00:00Z", '
        '"impressions": "many"}\n'
        '{"id": "c", "hook": ["H"], "body": "B", "ts": "2026-11-01T00:00:00Z"}\n'
        "{not json\n"
        "[1, 2]\n"
        '{"hook": "H", "body": "B", "ts": "2026-11-01T00:00:00Z"}\n',
    )
    ids, report = run(path)
    assert ids == ["a"]
    reasons = {p.where: p.reason for p in report.problems}
    assert "impressions" in reasons["line 2"]
    assert "hook" in reasons["line 3"]
    assert "not valid JSON" in reasons["line 4"]
    assert "expected a JSON object" in reasons["line 5"]
    assert "id: Field required" in reasons["line 6"]


def test_unknown_format_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot tell the format"):
        run(write(tmp_path, "p.xlsx", "x"))
