"""Hostile input against every parameter of every endpoint, on the known rows of
tests/api/conftest.py: SQL-shaped values, NUL, invalid UTF-8, 100k-character
strings, unicode, huge, negative and fractional numbers, repeated parameters.

Invalid values are a 422 naming the parameter with a readable message; valid
edge values give exact answers; nothing is ever a 5xx; and afterwards the
database holds exactly what it held before.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from .conftest import FIXTURE_ROWS, MIN, NEWEST_MINUTE, connect

# every table the fixture fills, and the retention setting
TABLES = [*FIXTURE_ROWS, "retention"]
# tables whose rows are exactly the fixture's and that no other test of the session changes
# (test_api.py prunes hashtag_minute_counts; post_stats has a time stamp column)
UNTOUCHED = ["hashtag_counts", "unigram_counts", "unigram_minute_counts"]

LONG = "x" * 60_000  # as long as an HTTP client sends (httpx refuses URLs over 64 KiB)
HUGE = "y" * 100_000  # sent straight to the ASGI app (see raw_get)

# SQL-shaped and otherwise hostile strings: for integer parameters none is an integer
SQL_SHAPED = [
    "1;DROP TABLE hashtag_counts",
    "1; DROP TABLE hashtag_counts; --",
    "1 OR 1=1",
    "1' OR '1'='1",
    "1) UNION SELECT hashtag, count FROM hashtag_counts --",
    "5m' OR '1'='1",
    "covid'); DELETE FROM hashtag_counts;--",
    "$$; TRUNCATE post_stats; $$",
    "\\x00",
    "%00",
    "\x00",
    "1\x00",
]
NOT_INTEGERS = SQL_SHAPED + ["", " ", "1.5", "1e3", "0x10", "ten", "٣", "1/2", "∞", "NaN", "None", "[1]", "{}", LONG]

INT_PARSING = "Input should be a valid integer, unable to parse string as an integer"
WINDOW_ENUM = "Input should be 'all', '5m', '15m', '1h' or '24h'"


def query_parameters() -> dict[tuple[str, str], dict]:
    """(path, name): schema of every query parameter of every GET endpoint, from the OpenAPI schema,
    so an endpoint added later is covered too."""
    from api.main import app

    spec = app.openapi()
    out = {}
    for path, ops in spec["paths"].items():
        for p in ops.get("get", {}).get("parameters", []):
            if p["in"] == "query":
                schema = p["schema"]
                if "$ref" in schema:
                    schema = {**spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]], **schema}
                out[(path, p["name"])] = schema
    return out


PARAMETERS = query_parameters()
# (path, integer parameter, smallest, largest)
INTEGER_PARAMETERS = [
    (path, name, s["minimum"], s["maximum"]) for (path, name), s in PARAMETERS.items() if s.get("type") == "integer"
]
ENUM_PARAMETERS = [(path, name, s["enum"]) for (path, name), s in PARAMETERS.items() if "enum" in s]
INT_IDS = [f"{path}?{name}" for path, name, *_ in INTEGER_PARAMETERS]


def test_every_query_parameter_is_covered_here():
    """The parameters below are taken from the OpenAPI schema: it must list at least these,
    and each one must be of a kind this module knows how to attack."""
    assert {(p, n, lo, hi) for p, n, lo, hi in INTEGER_PARAMETERS} >= {
        ("/api/hashtags", "limit", 1, 1000),
        ("/api/unigrams", "limit", 1, 1000),
        ("/api/trending", "limit", 1, 20),
        ("/api/timeline", "minutes", 1, 1440),
    }
    assert ENUM_PARAMETERS == [
        ("/api/hashtags", "window", ["all", "5m", "15m", "1h", "24h"]),
        ("/api/unigrams", "window", ["all", "5m", "15m", "1h", "24h"]),
    ]
    free_text = {k for k, s in PARAMETERS.items() if s.get("type") == "array"}
    assert free_text == {("/api/timeline", "hashtag")}  # attacked by the timeline tests below
    assert len(INTEGER_PARAMETERS) + len(ENUM_PARAMETERS) + len(free_text) == len(PARAMETERS)


ALL_HASHTAGS = [{"hashtag": h, "count": c} for h, c in FIXTURE_ROWS["hashtag_counts"]]  # already in contract order
ALL_WORDS = [{"word": w, "count": c} for w, c in FIXTURE_ROWS["unigram_counts"]]


def snapshot(db: str) -> dict:
    """Every row of every table, and which tables and schemas there are."""
    with connect(db, "pipeline", "pipeline_db_password") as conn:
        out = {
            "tables": conn.execute(
                "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
                " ORDER BY 1, 2"
            ).fetchall()
        }
        out["schemas"] = conn.execute("SELECT nspname FROM pg_namespace ORDER BY 1").fetchall()
        for schema, table in out["tables"]:
            out[table] = sorted(conn.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall(), key=repr)
        return out


@pytest.fixture(scope="module")
def before(api_db, client):
    """The database as this module found it (taken before its first request)."""
    return snapshot(api_db)


@pytest.fixture(autouse=True)
def _snapshot_first(before):
    pass


def only_error(r, param: str) -> dict:
    """The one validation error of a 422, which must name `param` as a query parameter."""
    assert r.status_code == 422, (r.status_code, r.text[:300])
    detail = r.json()["detail"]
    assert len(detail) == 1, detail
    assert detail[0]["loc"] == ["query", param]
    return detail[0]


def raw_get(client, path: str, query: bytes = b"") -> tuple[int, bytes]:
    """A GET straight into the ASGI app, with any path and query bytes an HTTP server
    might hand over (no client-side URL length limit or normalisation)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }

    async def call() -> list[dict]:
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        await client.app(scope, receive, send)
        return sent

    messages = client.portal.call(call)  # the app's own event loop: its connection pool lives there
    status = next(m["status"] for m in messages if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")


# ---------------------------------------------------------------- integers: limit, minutes


@pytest.mark.parametrize("path, param, low, high", INTEGER_PARAMETERS, ids=INT_IDS)
@pytest.mark.parametrize("value", NOT_INTEGERS, ids=lambda v: repr(v[:40]))
def test_a_non_integer_is_a_422_naming_the_parameter(client, path, param, low, high, value):
    error = only_error(client.get(path, params={param: value}), param)
    assert error["msg"] == INT_PARSING
    assert error["input"] == value  # echoed as data, whole


@pytest.mark.parametrize("path, param, low, high", INTEGER_PARAMETERS, ids=INT_IDS)
@pytest.mark.parametrize("value", ["0", "-1", "-1000", "-99999999999999999999"])
def test_too_small_is_a_422_naming_the_bound(client, path, param, low, high, value):
    error = only_error(client.get(path, params={param: value}), param)
    assert error["msg"] == f"Input should be greater than or equal to {low}"


@pytest.mark.parametrize("path, param, low, high", INTEGER_PARAMETERS, ids=INT_IDS)
@pytest.mark.parametrize("value", ["1441", "1000000", "99999999999999999999", "9" * 4300])
def test_too_large_is_a_422_naming_the_bound(client, path, param, low, high, value):
    error = only_error(client.get(path, params={param: value}), param)
    assert error["msg"] == f"Input should be less than or equal to {high}"


@pytest.mark.parametrize("path, param, low, high", INTEGER_PARAMETERS, ids=INT_IDS)
def test_integers_over_python_s_digit_limit_are_a_422_not_a_crash(client, path, param, low, high):
    # integers of more than 4300 digits are not parsed at all (CVE-2020-10735): still a readable 422
    error = only_error(client.get(path, params={param: "9" * 5000}), param)
    assert error["msg"] == "Unable to parse input string as an integer, exceeded maximum size"


def test_largest_limit_returns_exactly_the_rows_in_contract_order(client):
    assert client.get("/api/hashtags", params={"limit": 1000}).json() == ALL_HASHTAGS
    assert client.get("/api/unigrams", params={"limit": 1000}).json() == ALL_WORDS
    assert [(t["rank"], t["hashtag"]) for t in client.get("/api/trending", params={"limit": 20}).json()] == [
        (1, "vaccin"),
        (2, "covid"),
    ]


def test_smallest_limit_returns_the_first_row(client):
    assert client.get("/api/hashtags", params={"limit": 1}).json() == ALL_HASHTAGS[:1]
    assert client.get("/api/unigrams", params={"limit": 1}).json() == ALL_WORDS[:1]
    assert [t["hashtag"] for t in client.get("/api/trending", params={"limit": 1}).json()] == ["vaccin"]
    # limit 4 cuts inside the tie at 3 (a, b, é): code-point order decides
    assert client.get("/api/hashtags", params={"limit": 4}).json() == ALL_HASHTAGS[:4]


def test_largest_timeline_is_1440_zero_filled_minutes(client):
    tl = client.get("/api/timeline", params={"hashtag": ["covid", "vaccin"], "minutes": 1440}).json()
    start = NEWEST_MINUTE - 1439 * MIN
    covid, vaccin = [0] * 1440, [0] * 1440
    covid[1439], covid[1435] = 2, 3
    vaccin[1435], vaccin[1429] = 1, 6
    assert tl == {
        "start_ms": start,
        "minutes": 1440,
        "series": [{"hashtag": "covid", "counts": covid}, {"hashtag": "vaccin", "counts": vaccin}],
    }


def test_a_repeated_scalar_parameter_takes_its_last_value(client):
    assert client.get("/api/hashtags?limit=5&limit=2").json() == ALL_HASHTAGS[:2]
    assert client.get("/api/hashtags?limit=1;DROP%20TABLE%20hashtag_counts&limit=3").json() == ALL_HASHTAGS[:3]
    # the last one is validated: an injection-shaped last value is refused
    assert (
        only_error(client.get("/api/hashtags?limit=3&limit=1;DROP%20TABLE%20hashtag_counts"), "limit")["msg"]
        == INT_PARSING
    )
    assert client.get("/api/hashtags?window=5m&window=all").json() == ALL_HASHTAGS
    assert client.get("/api/unigrams?window=all&window=15m").json() == [{"word": "dose", "count": 2}]
    assert client.get("/api/timeline?minutes=60&minutes=1&hashtag=covid").json()["series"] == [
        {"hashtag": "covid", "counts": [2]}
    ]


# ---------------------------------------------------------------- window


@pytest.mark.parametrize("path, param, choices", ENUM_PARAMETERS, ids=[p for p, *_ in ENUM_PARAMETERS])
@pytest.mark.parametrize(
    "value",
    SQL_SHAPED
    + [
        "",
        " all",
        "all ",
        "ALL",
        "5M",
        "５m",
        "5 m",
        "5m\x00",
        "all'--",
        "1h; SELECT pg_sleep(10)",
        "24h' UNION SELECT 1--",
        LONG,
    ],
    ids=lambda v: repr(v[:40]),
)
def test_an_unknown_window_is_a_422_listing_the_choices(client, path, param, choices, value):
    error = only_error(client.get(path, params={param: value}), param)
    assert error["msg"] == "Input should be " + ", ".join(f"'{c}'" for c in choices[:-1]) + f" or '{choices[-1]}'"
    assert error["msg"] == WINDOW_ENUM
    assert error["input"] == value


@pytest.mark.parametrize("path, param, low, high", INTEGER_PARAMETERS, ids=INT_IDS)
def test_the_bounds_themselves_are_accepted(client, path, param, low, high):
    for value in (low, high):
        r = client.get(path, params={param: value})
        assert r.status_code == 200, (value, r.text[:300])
        if isinstance(r.json(), list):
            assert len(r.json()) <= value


# ---------------------------------------------------------------- timeline hashtags: free text, only ever data

TIMELINE_NAMES = SQL_SHAPED + [
    "covid' OR '1'='1",
    "covid\x00'; DROP TABLE hashtag_minute_counts; --",
    "covid%' OR hashtag LIKE '%",
    "covid\\'; DROP TABLE x; --",
    "'; COPY hashtag_counts TO '/tmp/x'; --",
    "{covid,vaccin}",  # an array literal, if it were ever spliced into ANY(...)
    "%",
    "_",
    "*",
    "\\",
    "'",
    '"',
    ";",
    "--",
    "ÉTÉ",
    "santé",
    "İstanbul",
    "🦠",
    "\u202ecovid",
    "co\u200bvid",
    "ﬁ",
    "ẞ",
    LONG,
]


def expected_name(value: str) -> str:
    return value.lstrip("#").lower().replace("\x00", "")


@pytest.mark.parametrize("value", TIMELINE_NAMES, ids=lambda v: repr(v[:40]))
def test_any_timeline_hashtag_is_only_data(client, value):
    r = client.get("/api/timeline", params={"hashtag": value, "minutes": 3})
    assert r.status_code == 200
    assert r.json() == {
        "start_ms": NEWEST_MINUTE - 2 * MIN,
        "minutes": 3,
        "series": [{"hashtag": expected_name(value), "counts": [0, 0, 0]}],
    }


def test_hostile_names_next_to_a_real_one_do_not_change_its_counts(client):
    names = ["covid' OR '1'='1", "#COVID", "covid'); DELETE FROM hashtag_counts;--", "Covid", "##covid"]
    tl = client.get("/api/timeline", params={"hashtag": names, "minutes": 5}).json()
    assert tl["series"] == [
        {"hashtag": "covid' or '1'='1", "counts": [0] * 5},
        {"hashtag": "covid", "counts": [3, 0, 0, 0, 2]},
        {"hashtag": "covid'); delete from hashtag_counts;--", "counts": [0] * 5},
    ]


def test_ten_hashtags_is_the_most_and_eleven_a_422(client):
    ten = [f"t{i}' OR 1=1--" for i in range(10)]
    assert len(client.get("/api/timeline", params={"hashtag": ten, "minutes": 1}).json()["series"]) == 10
    error = only_error(client.get("/api/timeline", params={"hashtag": ten + ["covid"]}), "hashtag")
    assert error["msg"] == "List should have at most 10 items after validation, not 11"


# ---------------------------------------------------------------- what an HTTP server may hand over as is


@pytest.mark.parametrize(
    "path, query, status, check",
    [
        # 100k characters in every parameter
        ("/api/hashtags", b"limit=" + HUGE.encode(), 422, lambda b: b["detail"][0]["loc"] == ["query", "limit"]),
        ("/api/hashtags", b"window=" + HUGE.encode(), 422, lambda b: b["detail"][0]["msg"] == WINDOW_ENUM),
        (
            "/api/unigrams",
            b"limit=1&window=" + HUGE.encode(),
            422,
            lambda b: b["detail"][0]["loc"] == ["query", "window"],
        ),
        ("/api/trending", b"limit=" + HUGE.encode(), 422, lambda b: b["detail"][0]["msg"] == INT_PARSING),
        ("/api/timeline", b"minutes=" + HUGE.encode(), 422, lambda b: b["detail"][0]["loc"] == ["query", "minutes"]),
        (
            "/api/timeline",
            b"minutes=1&hashtag=" + HUGE.encode(),
            200,
            lambda b: b["series"] == [{"hashtag": HUGE, "counts": [0]}],
        ),
        (
            "/api/timeline",
            b"minutes=1&" + b"&".join([b"hashtag=" + quote("é" * 10_000).encode()] * 10),
            200,
            lambda b: b["series"] == [{"hashtag": "é" * 10_000, "counts": [0]}],
        ),
        # a 100k-character parameter nobody asked for
        ("/api/hashtags", b"limit=1&" + HUGE.encode() + b"=1", 200, lambda b: b == ALL_HASHTAGS[:1]),
        ("/api/stats", b"q=" + HUGE.encode(), 200, lambda b: b["posts_counted"] == 42),
        # invalid UTF-8 and raw control bytes: decoded with replacement characters, then only data
        (
            "/api/timeline",
            b"minutes=1&hashtag=%FF%FE",
            200,
            lambda b: b["series"] == [{"hashtag": "\ufffd\ufffd", "counts": [0]}],
        ),
        ("/api/timeline", b"minutes=1&hashtag=%ED%A0%80", 200, lambda b: b["series"][0]["counts"] == [0]),
        (
            "/api/timeline",
            b"minutes=1&hashtag=co%00vid",
            200,
            lambda b: b["series"] == [{"hashtag": "covid", "counts": [2]}],
        ),
        (
            "/api/timeline",
            b"minutes=1&hashtag=co\x00vid",
            200,
            lambda b: b["series"] == [{"hashtag": "covid", "counts": [2]}],
        ),
        ("/api/hashtags", b"limit=%FF", 422, lambda b: b["detail"][0]["msg"] == INT_PARSING),
        ("/api/hashtags", b"window=%C0%AF", 422, lambda b: b["detail"][0]["msg"] == WINDOW_ENUM),
        ("/api/hashtags", b"limit=1&limit", 422, lambda b: b["detail"][0]["msg"] == INT_PARSING),
        ("/api/hashtags", b"&&&=&=%%%&limit=2", 200, lambda b: b == ALL_HASHTAGS[:2]),
        # paths that try to leave the static directory get nothing
        ("/../.stack/secrets/api_db_password", b"", 404, lambda b: b == {"detail": "Not Found"}),
        (
            "/vendor/chart.js/../../../../.stack/secrets/api_db_password",
            b"",
            404,
            lambda b: b == {"detail": "Not Found"},
        ),
        ("/vendor/chart.js/../../../api/core/config.py", b"", 404, lambda b: b == {"detail": "Not Found"}),
        ("//etc/passwd", b"", 404, lambda b: b == {"detail": "Not Found"}),
        ("/api/hashtags;DROP TABLE hashtag_counts", b"", 404, lambda b: b == {"detail": "Not Found"}),
        ("/api/hashtags\x00", b"", 404, lambda b: b == {"detail": "Not Found"}),
    ],
    ids=lambda v: v[:40] if isinstance(v, str) else None,
)
def test_raw_requests(client, path, query, status, check):
    got, body = raw_get(client, path, query)
    assert got == status, body[:300]
    assert check(json.loads(body))


def test_endpoints_without_parameters_ignore_hostile_ones(client):
    evil = {"limit": "1;DROP TABLE hashtag_counts", "window": "5m' OR '1'='1", "q": "\x00", "é": "🦠"}
    assert client.get("/api/stats", params=evil).json()["posts_counted"] == 42
    assert client.get("/healthz", params=evil).json() == {"status": "ok"}
    assert client.get("/metrics", params=evil).status_code == 200


# ---------------------------------------------------------------- afterwards


def test_zz_the_database_holds_exactly_what_it_held(api_db, before):
    """Last in the module: nothing above changed a row, a table or a schema."""
    for table in UNTOUCHED:
        assert before[table] == sorted(FIXTURE_ROWS[table], key=repr), table
    assert snapshot(api_db) == before
    assert set(TABLES) <= {t for _, t in before["tables"]}
