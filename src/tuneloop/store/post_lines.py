"""The collector's JSON lines, built by PostgreSQL and streamed with ``COPY … TO STDOUT``.

Python spent most of the collector's time turning rows into tuples and tuples into JSON
(0.28–0.31x of a plain ``COPY`` of the same query, bench/collect.py). Here the server
writes each line (``row_to_json`` over the collector's own query) and Python only copies
the bytes to the sink. The lines are byte-identical to ``tuneloop.collect.export``'s orjson
output on the same rows (tests/integration/collect/test_post_lines.py), which takes care of
three differences between PostgreSQL's JSON and orjson's:

* numbers: PostgreSQL prints a double as ``1``, ``1e-05`` or ``1e+15``, orjson as ``1.0``,
  ``0.00001`` and ``1000000000000000.0`` (decimal for exponents -5 to 15, otherwise
  ``1e-7``/``1e+16``); NaN and infinities are ``null`` in orjson. A non-integral double in
  [1e-4, 1e15) prints the same in both; ``ENGAGEMENT_JSON`` rewrites the others;
* timestamps: orjson always writes six fractional digits when there are microseconds (and
  no offset for a naive value), JSON's timestamp trims trailing zeros: the lines keep
  JSON's text when its length shows six digits or none, else ``to_char`` writes it;
* COPY's text format escapes backslashes; CSV with a quote and delimiter that JSON never
  contains unescaped (``\\x01``, ``\\x02``) passes every line through untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from sqlalchemy import Engine

TIMESTAMPTZ_OID = 1184

# Python's float repr and orjson agree, except that orjson writes exponents -5 and 15 in
# decimal and drops exponent padding; c.v is the double (float8). PostgreSQL prints
# integers of 2**53 and more exactly, not shortest: for those (exponent 16 and up) the
# shortest digits that read back as the same double are searched.
ENGAGEMENT_JSON = r"""CASE
  WHEN c.v::text IN ('NaN', 'Infinity', '-Infinity') THEN 'null'
  WHEN strpos(c.v::text, 'e') = 0
    THEN CASE WHEN strpos(c.v::text, '.') = 0 THEN c.v::text || '.0' ELSE c.v::text END
  ELSE (
    SELECT CASE
      WHEN x = -5 THEN m[1] || '0.0000' || m[2] || coalesce(m[3], '')
      WHEN x = 15 AND length(m[2] || coalesce(m[3], '')) <= 16
        THEN m[1] || rpad(m[2] || coalesce(m[3], ''), 16, '0') || '.0'
      WHEN x = 15 THEN m[1] || m[2] || substr(m[3], 1, 15) || '.' || substr(m[3], 16)
      WHEN x >= 16 THEN m[1] || (
        SELECT left(d, 1) || coalesce('.' || nullif(substr(d, 2), ''), '')
          || 'e+' || (length(r) - 1)::text
        FROM generate_series(1, 17) AS k,
          LATERAL (SELECT abs(c.v::text::numeric) AS n) AS exact,
          LATERAL (SELECT round(n, k - length(trunc(n)::text))::text AS r) AS rounded,
          LATERAL (SELECT rtrim(r, '0') AS d) AS digits
        WHERE CASE WHEN r::numeric > 1.7976931348623158e308 THEN false
          ELSE r::float8 = abs(c.v) END
        ORDER BY k LIMIT 1)
      ELSE m[1] || m[2] || coalesce('.' || m[3], '') || 'e' || m[4] || abs(x)::text
    END
    FROM (SELECT m, (m[4] || m[5])::int AS x
          FROM regexp_match(c.v::text, '^(-?)(\d)(?:\.(\d+))?e([+-])(\d+)$') AS r(m)) AS parts
  )
END"""
# The common case, cheaply: a non-integral double in [1e-4, 1e15) prints the same in both.
FAST_ENGAGEMENT = (
    "CASE WHEN abs(c.v) >= 0.0001::float8 AND abs(c.v) < 1e15::float8 AND c.v <> trunc(c.v)"
    f" THEN to_json(c.v) ELSE ({ENGAGEMENT_JSON})::json END"
)
# JSON's timestamp ("2026-11-01T12:30:00.5+00:00") trims trailing fractional zeros, orjson
# writes six digits when there are microseconds: the common lengths (a four-digit year, an
# offset in hours and minutes, six digits or none) are kept, the others formatted again.
TS_JSON = {
    True: (
        "CASE WHEN length(c.t) = 27 OR length(c.t) = 34 AND substr(c.t, 28, 1) IN ('+', '-')"
        " THEN c.t::json ELSE to_json(replace(to_char(c.ts,"
        """ 'YYYY-MM-DD"T"HH24:MI:SS.USTZH:TZM'), '.000000', '')) END"""
    ),
    False: (
        "CASE WHEN length(c.t) IN (21, 28) THEN c.t::json ELSE to_json(replace(to_char(c.ts,"
        """ 'YYYY-MM-DD"T"HH24:MI:SS.US'), '.000000', '')) END"""
    ),
}


def lines_sql(query_sql: str, *, aware: bool) -> str:
    """``COPY`` of one JSON object per row of ``query_sql`` (columns id, persona_id, hook,
    body, engagement_rate, ts, source_model, source_version); keys and order as
    ``CollectedPost``'s fields."""
    return (
        "COPY (SELECT row_to_json(j)::text FROM ("
        "SELECT c.id, c.persona_id, c.hook, c.body,"
        f" {FAST_ENGAGEMENT} AS engagement_rate, {TS_JSON[aware]} AS ts,"
        " c.source_model, c.source_version"
        " FROM (SELECT CAST(q.id AS TEXT) AS id, q.persona_id, q.hook, q.body,"
        " CAST(q.engagement_rate AS DOUBLE PRECISION) AS v, q.ts, to_json(q.ts)::text AS t,"
        " CAST(q.source_model AS TEXT) AS source_model,"
        " CAST(q.source_version AS TEXT) AS source_version"
        f" FROM ({query_sql}) AS q OFFSET 0) AS c) AS j)"
        " TO STDOUT (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')"
    )


def copy_post_lines(
    engine: Engine, query_sql: str, params: Mapping[str, Any], sink: IO[bytes]
) -> int:
    """Write the query's rows to ``sink`` as JSON lines; returns how many.

    One read-only transaction: the settings that shape the output (float digits, encoding)
    are set for it alone, and so is the statement timeout, because one ``COPY`` of a large
    collection is a single statement (the FETCH loop it replaces was many small ones).
    """
    with engine.connect() as connection:
        raw: Any = connection.connection.dbapi_connection
        with raw.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('extra_float_digits', '1', true),"
                " set_config('client_encoding', 'UTF8', true),"
                " set_config('statement_timeout', '0', true)"
            )
            cursor.execute(f"SELECT ts FROM ({query_sql}) AS q LIMIT 0", params)
            aware = cursor.description[0].type_code == TIMESTAMPTZ_OID
            rows = 0
            with cursor.copy(lines_sql(query_sql, aware=aware), params) as copy:
                # libpq hands out one row per CopyData message (documented for text/CSV).
                for line in copy:
                    sink.write(line)
                    rows += 1
        connection.rollback()
    return rows
