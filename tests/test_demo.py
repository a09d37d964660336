"""`tilecast demo`: a real process seeds a fresh database, a real server then serves the dashboard it printed,
every tile computed already and agreeing with the events in the database; a second run reuses everything."""

import asyncio
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.db import async_url
from tests.conftest import FreshDatabases
from tests.live import env_without_database, run_cli, serve

KEY_RE = re.compile(r"^API key: (phx_\S+)$", re.MULTILINE)
URL_RE = re.compile(
    r"^Dashboard: (http://127\.0\.0\.1:8000(/api/environments/(\d+)/dashboards/(\d+)/))$", re.MULTILINE
)


def _fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(async_url(url).set(drivername="postgresql").render_as_string(False))
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


def _run_demo(env: dict[str, str], events: int) -> tuple[str, str, int, int, str]:
    """(key, dashboard path, team id, dashboard id, stderr) from the command's output."""
    result = run_cli(["demo", "--events", str(events)], env)
    assert result.returncode == 0, result.stdout + result.stderr
    key, url = KEY_RE.search(result.stdout), URL_RE.search(result.stdout)
    assert key is not None and url is not None, result.stdout
    assert f"curl -s {url.group(1)} -H 'Authorization: Bearer {key.group(1)}'" in result.stdout
    # The page that draws it, for a browser signed in with the key.
    assert f"Page: http://127.0.0.1:8000/project/{url.group(3)}/dashboard/{url.group(4)}\n" in result.stdout
    return key.group(1), url.group(2), int(url.group(3)), int(url.group(4)), result.stderr


def _by_name(tiles: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {t["insight"]["name"]: t["insight"] for t in tiles if t["insight"] is not None}


def _check_dashboard(db: str, base: str, key: str, path: str, team: int) -> dict[str, Any]:
    response = httpx.get(f"{base}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert response.status_code == 200, response.text
    dashboard: dict[str, Any] = response.json()
    assert dashboard["name"] == "Demo dashboard"
    tiles = dashboard["tiles"]
    texts = [t for t in tiles if t["text"] is not None]
    insight_tiles = [t for t in tiles if t["insight"] is not None]
    assert len(tiles) >= 8 and len(texts) == 1 and len(insight_tiles) == len(tiles) - 1
    for tile in insight_tiles:
        name = tile["insight"]["name"]
        # Without `refresh` a retrieve only reads the cache: these are the results the demo computed.
        assert tile["is_cached"] is True, name
        assert tile["insight"]["is_cached"] is True, name
        assert tile["insight"]["result"] is not None, name
        assert tile.get("error") is None and tile["insight"]["error"] is None, name
        assert set(tile["layouts"]) == {"sm", "xs"}, name
    # Tiles were placed in a grid: no two share a place on the `sm` layout.
    places = [(t["layouts"]["sm"]["x"], t["layouts"]["sm"]["y"]) for t in tiles]
    assert len(set(places)) == len(places)

    insights = _by_name(insight_tiles)
    (pageviews,) = insights["Daily pageviews"]["result"]
    first_day = datetime.fromisoformat(pageviews["days"][0] + "T00:00:00+00:00")
    assert len(pageviews["days"]) == 31
    [(stored,)] = _fetch(
        db,
        "SELECT count(*) FROM events WHERE team_id = $1 AND event = '$pageview' AND timestamp >= $2",
        team,
        first_day,
    )
    assert stored > 0 and pageviews["count"] == stored

    # The same range broken down by browser adds up to the same count (fewer than 25 browsers: no "other").
    by_browser = insights["Pageviews by browser"]["result"]
    assert len(by_browser) >= 4
    assert sum(r["aggregated_value"] for r in by_browser) == stored

    revenue = insights["Revenue, last 30 days"]
    current = next(r for r in revenue["result"] if r["compare_label"] == "current")
    # BoldNumber's range is exact: the 30 days up to the moment of computation (the insight's last_refresh).
    computed_at = datetime.fromisoformat(revenue["last_refresh"].replace("Z", "+00:00"))
    [(revenue_sum,)] = _fetch(
        db,
        "SELECT coalesce(sum((properties->>'revenue')::float), 0) FROM events "
        "WHERE team_id = $1 AND event = 'purchase' AND timestamp >= $2 AND timestamp <= $3",
        team,
        computed_at - timedelta(days=30),
        computed_at,
    )
    assert current["aggregated_value"] == pytest.approx(revenue_sum)
    _check_other_kinds(db, insights, team)
    return dashboard


def _check_other_kinds(db: str, insights: dict[str, dict[str, Any]], team: int) -> None:
    """Retention, lifecycle and stickiness tiles agree with SQL over the same events (the team is in UTC)."""
    rows = insights["Weekly retention"]["result"]
    assert len(rows) >= 8 and all(len(row["values"]) == 8 for row in rows)
    first_week = datetime.fromisoformat(rows[0]["date"].replace("Z", "+00:00"))
    [(signed_up,)] = _fetch(
        db,
        "SELECT count(*) FROM (SELECT min(timestamp) AS first FROM events WHERE team_id = $1 "
        "AND event = 'signed_up' GROUP BY distinct_id) firsts WHERE first >= $2",
        team,
        first_week,
    )
    assert sum(row["values"][0]["count"] for row in rows) == signed_up > 0

    lifecycle = {series["status"]: series for series in insights["Weekly lifecycle"]["result"]}
    assert list(lifecycle) == ["new", "returning", "resurrecting", "dormant"]
    first = datetime.fromisoformat(lifecycle["new"]["days"][0] + "T00:00:00+00:00")
    [(active_weeks,)] = _fetch(
        db,
        "SELECT count(DISTINCT (distinct_id, "
        "date_trunc('week', timestamp AT TIME ZONE 'UTC' + interval '1 day'))) FROM events "
        "WHERE team_id = $1 AND event = '$pageview' AND timestamp >= $2",
        team,
        first,
    )
    active = sum(lifecycle[status]["count"] for status in ("new", "returning", "resurrecting"))
    assert active == active_weeks > 0 and lifecycle["dormant"]["count"] < 0

    (sticky,) = insights["Stickiness, last 30 days"]["result"]
    assert len(sticky["data"]) == 31 and sticky["days"] == list(range(1, 32))
    computed_at = datetime.fromisoformat(
        insights["Stickiness, last 30 days"]["last_refresh"].replace("Z", "+00:00")
    )
    since = computed_at.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=30)
    [(users, user_days)] = _fetch(
        db,
        "SELECT count(DISTINCT distinct_id), "
        "count(DISTINCT (distinct_id, (timestamp AT TIME ZONE 'UTC')::date)) FROM events "
        "WHERE team_id = $1 AND event = '$pageview' AND timestamp >= $2",
        team,
        since,
    )
    assert sticky["count"] == users > 0
    assert sum(k * n for k, n in enumerate(sticky["data"], start=1)) == user_days


def test_demo_seeds_a_dashboard_served_from_a_warm_cache_and_reuses_it(
    fresh_databases: FreshDatabases, tmp_path: Path
) -> None:
    db = fresh_databases.create(migrated=False)
    env = env_without_database(DATABASE_URL=db)

    key, path, team, dashboard_id, stderr = _run_demo(env, 2000)
    assert "ingesting events" in stderr and "2,000/2,000" in stderr

    [(total, first, last, paths, browsers, countries, users, sessions)] = _fetch(
        db,
        "SELECT count(*), min(timestamp), max(timestamp), count(DISTINCT properties->>'$pathname'), "
        "count(DISTINCT properties->>'$browser'), count(DISTINCT properties->>'$geoip_country_code'), "
        "count(DISTINCT distinct_id), count(DISTINCT properties->>'$session_id') "
        "FROM events WHERE team_id = $1",
        team,
    )
    [(now,)] = _fetch(db, "SELECT now()")
    assert total == 2000
    assert now - timedelta(days=90) <= first and last <= now
    assert paths >= 15 and browsers >= 4 and countries >= 8 and users >= 20 and sessions >= 100
    kinds = dict(
        (r[0], r[1])
        for r in _fetch(db, "SELECT event, count(*) FROM events WHERE team_id = $1 GROUP BY event", team)
    )
    assert set(kinds) == {"$pageview", "signed_up", "purchase", "$screen", "$ai_generation"}
    # What the built-in templates read: LLM calls with their properties, persons' countries, campaigns.
    [(incomplete_calls, traces, located, persons, campaigns)] = _fetch(
        db,
        "SELECT (SELECT count(*) FROM events WHERE team_id = $1 AND event = '$ai_generation' AND NOT "
        "properties ?& array['$ai_trace_id', '$ai_model', '$ai_latency', '$ai_total_cost_usd', "
        "'$ai_is_error', '$ai_http_status']), "
        "(SELECT count(DISTINCT properties->>'$ai_trace_id') FROM events WHERE team_id = $1), "
        "(SELECT count(*) FROM person WHERE team_id = $1 AND properties ? '$geoip_country_code'), "
        "(SELECT count(*) FROM person WHERE team_id = $1), "
        "(SELECT count(*) FROM events WHERE team_id = $1 AND properties ? 'utm_source')",
        team,
    )
    assert incomplete_calls == 0 and 0 < traces < kinds["$ai_generation"]
    assert located == persons > 0 and campaigns > 0
    [(bad_revenue,)] = _fetch(
        db,
        "SELECT count(*) FROM events WHERE team_id = $1 AND event = 'purchase' "
        "AND jsonb_typeof(properties->'revenue') IS DISTINCT FROM 'number'",
        team,
    )
    assert bad_revenue == 0
    # Every distinct id that signed up has a person with its email; those that bought, their plan.
    [(signed_up, with_email, bought, with_plan)] = _fetch(
        db,
        "SELECT count(DISTINCT e.distinct_id) FILTER (WHERE e.event = 'signed_up'), "
        "count(DISTINCT p.distinct_id) FILTER (WHERE e.event = 'signed_up' AND p.properties ? 'email'), "
        "count(DISTINCT e.distinct_id) FILTER (WHERE e.event = 'purchase'), "
        "count(DISTINCT p.distinct_id) FILTER (WHERE e.event = 'purchase' AND p.properties ? 'plan') "
        "FROM events e LEFT JOIN person p ON p.team_id = e.team_id AND p.distinct_id = e.distinct_id "
        "WHERE e.team_id = $1",
        team,
    )
    assert signed_up > 0 and (with_email, with_plan) == (signed_up, bought)
    # Its definitions, as capture would have recorded them.
    definitions = _fetch(db, "SELECT name FROM event_definition WHERE team_id = $1 ORDER BY name", team)
    assert [r[0] for r in definitions] == sorted(kinds)
    [(revenue_type,)] = _fetch(
        db,
        "SELECT property_type FROM property_definition WHERE team_id = $1 AND type = 1 AND name = 'revenue'",
        team,
    )
    assert revenue_type == "Numeric"
    [(person_email,)] = _fetch(
        db,
        "SELECT count(*) FROM property_definition WHERE team_id = $1 AND type = 2 AND name = 'email'",
        team,
    )
    assert person_email == 1

    with serve(env, tmp_path) as (base, _):
        first_dashboard = _check_dashboard(db, base, key, path, team)

    # Again: the same team and dashboard, no duplicated tiles, more events, every tile recomputed.
    key2, path2, team2, dashboard_id2, stderr2 = _run_demo(env, 2000)
    assert (team2, dashboard_id2, path2) == (team, dashboard_id, path) and key2 != key
    assert "reused the demo dashboard" in stderr2
    [(total,)] = _fetch(db, "SELECT count(*) FROM events WHERE team_id = $1", team)
    assert total == 4000
    [(teams, dashboards)] = _fetch(
        db, "SELECT (SELECT count(*) FROM team), (SELECT count(*) FROM dashboard WHERE team_id = $1)", team
    )
    assert teams == 1 and dashboards == 1

    with serve(env, tmp_path) as (base, _):
        second_dashboard = _check_dashboard(db, base, key2, path, team)
        # The first key still works: reusing the team does not revoke earlier keys.
        assert httpx.get(f"{base}{path}", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert [t["id"] for t in second_dashboard["tiles"]] == [t["id"] for t in first_dashboard["tiles"]]
    first_views = _by_name(first_dashboard["tiles"])["Daily pageviews"]["result"][0]["count"]
    second_views = _by_name(second_dashboard["tiles"])["Daily pageviews"]["result"][0]["count"]
    assert second_views > first_views


def test_demo_refuses_a_negative_event_count() -> None:
    result = run_cli(
        ["demo", "--events", "-1"], env_without_database(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    )
    assert result.returncode == 2 and "--events" in result.stderr


def test_demo_prints_the_links_of_the_server_it_is_given(
    fresh_databases: FreshDatabases, tmp_path: Path
) -> None:
    env = env_without_database(DATABASE_URL=fresh_databases.create(migrated=False))
    with serve(env, tmp_path) as (base, _):
        result = run_cli(["demo", "--events", "0", "--url", base + "/"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    page = re.search(r"^Page: (\S+)/project/\d+/dashboard/\d+$", result.stdout, re.MULTILINE)
    assert page is not None and page.group(1) == base, result.stdout
    assert re.search(
        rf"^Dashboard: {re.escape(base)}/api/environments/\d+/dashboards/\d+/$", result.stdout, re.M
    )
    assert f"Tilecast answers at {base}: try it now." in result.stdout

    nobody = "http://127.0.0.1:9"  # the discard port: nothing answers
    again = run_cli(["demo", "--events", "0", "--url", nobody], env)
    assert f"Nothing answers at {nobody} yet" in again.stdout and f"Page: {nobody}/project/" in again.stdout
    refused = run_cli(["demo", "--url", "ftp://example.com"], env)
    assert refused.returncode == 2 and "--url" in refused.stderr
