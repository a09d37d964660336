"""`tilecast demo`: a demo team with realistic synthetic events and a dashboard rendered from them.

Everything goes through the services the API uses: events through capture's insert statement, insights
through the insights service (so they become tiles), the text tile and the tiles' places through the
dashboards service, results through the one rendering path (so the cache is warm when the printed URL is
opened). Safe to run again: the team and the dashboard are reused, events are
added, every tile is recomputed.
"""

import bisect
import itertools
import json
import math
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.accounts import create_personal_api_key, get_or_create_team, get_or_create_user
from app.auth import repository as auth_repository
from app.auth.dependencies import Principal, TeamAccess
from app.auth.keys import hash_key_value
from app.config import get_settings
from app.dashboards.schemas import DashboardUpdate, DashboardWrite, TextEdit, TileEdit
from app.dashboards.service import Overrides, create_dashboard, update_dashboard
from app.dashboards.tiles import compute, plan_tiles, tile_of
from app.ingestion.definitions import KNOWN
from app.ingestion.repository import NewEvent, insert_events_for_token
from app.ingestion.service import PersonUpdates
from app.insights.schemas import InsightWrite
from app.insights.service import create_insight
from app.models import Dashboard, DashboardTile, Event, Insight, Team
from app.query.pool import RenderPool
from app.query.render import RefreshMode

DEMO_EMAIL = "demo@tilecast.local"
DEMO_TEAM = "Demo"
DEMO_DASHBOARD = "Demo dashboard"
DEFAULT_EVENTS = 100_000
DAYS = 90
# Large enough that a statement carries thousands of rows (few round trips), small enough that one batch's
# arrays stay a few megabytes.
BATCH = 5_000

# --- synthetic events ---------------------------------------------------------------------------------------

_HOST = "shop.example.com"
# (path, weight, page title): landing and product pages dominate, as on most sites.
_PATHS: tuple[tuple[str, float, str], ...] = (
    ("/", 22, "Home"),
    ("/pricing", 9, "Pricing"),
    ("/features", 7, "Features"),
    ("/features/dashboards", 4, "Dashboards"),
    ("/features/insights", 3, "Insights"),
    ("/docs", 6, "Documentation"),
    ("/docs/getting-started", 5, "Getting started"),
    ("/docs/api", 4, "API reference"),
    ("/blog", 5, "Blog"),
    ("/blog/launch-week", 3, "Launch week"),
    ("/blog/self-hosted-analytics", 3, "Self-hosted analytics"),
    ("/changelog", 2, "Changelog"),
    ("/about", 2, "About us"),
    ("/careers", 1, "Careers"),
    ("/contact", 1.5, "Contact"),
    ("/login", 4, "Log in"),
    ("/signup", 3, "Sign up"),
    ("/app", 6, "App"),
    ("/app/dashboards", 4, "Dashboards · App"),
    ("/app/settings", 1.5, "Settings · App"),
    ("/checkout", 1.5, "Checkout"),
)
# (browser, weight, versions, operating systems)
_BROWSERS: tuple[tuple[str, float, tuple[int, ...], tuple[str, ...]], ...] = (
    ("Chrome", 62, (128, 129, 130, 131), ("Windows", "Mac OS X", "Android", "Linux")),
    ("Safari", 19, (17, 18), ("Mac OS X", "iOS")),
    ("Firefox", 7, (131, 132, 133), ("Windows", "Linux", "Mac OS X")),
    ("Microsoft Edge", 6, (130, 131), ("Windows",)),
    ("Samsung Internet", 3, (26, 27), ("Android",)),
    ("Opera", 3, (113, 114), ("Windows", "Mac OS X")),
)
_COUNTRIES: tuple[tuple[str, str, float], ...] = (
    ("US", "United States", 31),
    ("GB", "United Kingdom", 9),
    ("DE", "Germany", 9),
    ("IN", "India", 8),
    ("FR", "France", 6),
    ("BR", "Brazil", 5),
    ("CA", "Canada", 5),
    ("NL", "Netherlands", 4),
    ("ES", "Spain", 3.5),
    ("JP", "Japan", 3.5),
    ("AU", "Australia", 3),
    ("PL", "Poland", 3),
    ("SE", "Sweden", 2),
    ("IT", "Italy", 2.5),
    ("MX", "Mexico", 2),
    ("NG", "Nigeria", 1.5),
    ("SG", "Singapore", 1),
    ("ZA", "South Africa", 1),
)
_REFERRERS: tuple[tuple[str, float], ...] = (
    ("$direct", 45),
    ("www.google.com", 30),
    ("github.com", 7),
    ("news.ycombinator.com", 6),
    ("twitter.com", 5),
    ("www.bing.com", 4),
    ("duckduckgo.com", 3),
)
_UTM_SOURCES = ("newsletter", "twitter", "producthunt")
_SCREENS = ("Home", "Dashboards", "Settings")
# (model, typical cost per call in USD, typical latency in seconds) of the LLM calls the product makes.
_AI_MODELS: tuple[tuple[str, float, float], ...] = (
    ("gpt-4o-mini", 0.0004, 0.8),
    ("gpt-4o", 0.006, 1.9),
    ("claude-3-5-sonnet", 0.009, 2.4),
)
# (plan, price, weight): revenue is price times seats.
_PLANS: tuple[tuple[str, float, float], ...] = (("starter", 19.0, 55), ("pro", 49.0, 35), ("team", 199.0, 10))
# Share of traffic per UTC hour: a working-day curve (Europe and the Americas overlapping mid-day).
_HOURS = (2, 1.5, 1, 1, 1, 1.5, 2.5, 4, 5.5, 6.5, 7, 7, 7, 7.5, 8, 8, 7.5, 6.5, 5.5, 4.5, 4, 3.5, 3, 2.5)
_WEEKDAY = (1.0, 1.05, 1.05, 1.0, 0.9, 0.55, 0.5)  # Monday … Sunday


def _picker(weights: Sequence[float], rng: random.Random) -> Callable[[], int]:
    """An index drawn with the given weights (bisect over cumulative sums: O(log n) per draw)."""
    cumulative = list(itertools.accumulate(weights))
    total = cumulative[-1]
    return lambda: bisect.bisect_right(cumulative, rng.random() * total)


@dataclass
class _User:
    distinct_id: str
    first_day: int
    browser: int
    version: int
    os: str
    country: int
    signed_up: bool = False


# Sign-ups' email domains: the last is the demo company's own (what test-account filters usually drop).
_EMAIL_DOMAINS = ("example.com", "example.org", "tilecast.dev")


@dataclass
class _Generator:
    """Sessions of pageviews by a few thousand users over the last `DAYS` days: more users later (growth),
    quieter weekends and nights, a heavy-tailed activity per user, sign-ups, purchases with revenue."""

    now: datetime
    rng: random.Random
    users: list[_User] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = self.rng
        self.start = (self.now - timedelta(days=DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
        self.path = _picker([w for _, w, _ in _PATHS], rng)
        self.browser = _picker([w for _, w, _, _ in _BROWSERS], rng)
        self.country = _picker([w for _, _, w in _COUNTRIES], rng)
        self.referrer = _picker([w for _, w in _REFERRERS], rng)
        self.plan = _picker([w for _, _, w in _PLANS], rng)
        self.hour = _picker(_HOURS, rng)
        days = [self.start + timedelta(days=d) for d in range(DAYS)]
        # Traffic grows by about half over the period; weekends are quieter.
        self.day = _picker(
            [(1 + 0.5 * d / DAYS) * _WEEKDAY[day.weekday()] for d, day in enumerate(days)], rng
        )

    def make_users(self, count: int) -> None:
        rng = self.rng
        users = []
        for _ in range(count):
            browser = self.browser()
            _, _, versions, systems = _BROWSERS[browser]
            users.append(
                _User(
                    distinct_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    # A third were there from the start; the others arrive over the period, later ones more.
                    first_day=0 if rng.random() < 0.35 else int(DAYS * math.sqrt(rng.random())),
                    browser=browser,
                    version=rng.choice(versions),
                    os=rng.choice(systems),
                    country=self.country(),
                )
            )
        users.sort(key=lambda u: u.first_day)
        self.users = users
        self.first_days = [u.first_day for u in users]
        # Activity is heavy-tailed: a few users make many of the sessions.
        self.activity = list(itertools.accumulate(rng.paretovariate(1.6) for _ in users))

    def _user_on(self, day: int) -> _User:
        """A user who had arrived by `day`, drawn by activity."""
        arrived = bisect.bisect_right(self.first_days, day)
        total = self.activity[arrived - 1]
        return self.users[bisect.bisect_right(self.activity, self.rng.random() * total, hi=arrived - 1)]

    def sessions(self) -> Iterator[list[NewEvent]]:
        """Endless sessions, each a list of events in time order, none in the future."""
        rng = self.rng
        while True:
            day = self.day()
            user = self._user_on(day)
            pages = min(1 + int(rng.expovariate(1 / 3)), 15)
            at = self.start + timedelta(days=day, hours=self.hour(), seconds=rng.randrange(3600))
            span = timedelta(seconds=pages * 90)
            if at + span > self.now:  # today's sessions happen before now
                at -= timedelta(days=1)
            yield self._session(user, at, pages)

    def _session(self, user: _User, at: datetime, pages: int) -> list[NewEvent]:
        rng = self.rng
        browser, _, _, _ = _BROWSERS[user.browser]
        code, country, _ = _COUNTRIES[user.country]
        common: dict[str, Any] = {
            "$browser": browser,
            "$browser_version": user.version,
            "$os": user.os,
            "$device_type": "Mobile" if user.os in ("iOS", "Android") else "Desktop",
            "$geoip_country_code": code,
            "$geoip_country_name": country,
            "$session_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "$lib": "web",
            "$lib_version": "1.200.0",
        }
        referrer = _REFERRERS[self.referrer()][0]
        # Campaign traffic carries a `utm_source`; organic search never does.
        utm_source = rng.choice(_UTM_SOURCES) if referrer != "www.google.com" and rng.random() < 0.2 else None
        events = []
        for i in range(pages):
            path, _, title = _PATHS[self.path()]
            properties = {
                **common,
                "$current_url": f"https://{_HOST}{path}",
                "$pathname": path,
                "$host": _HOST,
                "title": title,
            }
            if i == 0:
                properties["$referring_domain"] = referrer
                if utm_source is not None:
                    properties["utm_source"] = utm_source
                # GeoIP sets the person's location, as PostHog's GeoIP transformation does.
                properties["$set"] = {"$geoip_country_code": code, "$geoip_country_name": country}
            events.append(self._event("$pageview", user, at, properties))
            at += timedelta(seconds=rng.randint(5, 150))
        if common["$device_type"] == "Mobile" and rng.random() < 0.3:
            # Some mobile visitors use the app, which sends screens instead of pageviews.
            screen = {**common, "$screen_name": rng.choice(_SCREENS)}
            events.append(self._event("$screen", user, at, screen))
        if user.signed_up and rng.random() < 0.25:
            events.extend(self._generations(user, at, common))
        if not user.signed_up and rng.random() < 0.6:
            user.signed_up = True
            person = {
                "$set": {"email": f"user{user.distinct_id[:8]}@{_EMAIL_DOMAINS[user.country % 3]}"},
                "$set_once": {"signed_up_on": f"{at:%Y-%m-%d}", "first_browser": browser},
            }
            events.append(self._event("signed_up", user, at, {**common, "$pathname": "/signup", **person}))
        elif user.signed_up and rng.random() < 0.06:
            plan, price, _ = _PLANS[self.plan()]
            seats = 1 if rng.random() < 0.7 else rng.randint(2, 10)
            purchase = {
                **common,
                "plan": plan,
                "seats": seats,
                "revenue": price * seats,
                "currency": "USD",
                "$set": {"plan": plan},
            }
            events.append(self._event("purchase", user, at, purchase))
        return events

    def _generations(self, user: _User, at: datetime, common: dict[str, Any]) -> list[NewEvent]:
        """A trace of one to three LLM calls (`$ai_generation`) made for a signed-up user."""
        rng = self.rng
        trace = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        events = []
        for _ in range(rng.randint(1, 3)):
            model, cost_per_call, latency = _AI_MODELS[rng.randrange(len(_AI_MODELS))]
            failed = rng.random() < 0.05
            properties = {
                "$session_id": common["$session_id"],
                "$ai_trace_id": trace,
                "$ai_model": model,
                "$ai_provider": "openai" if model.startswith("gpt") else "anthropic",
                "$ai_latency": round(rng.lognormvariate(math.log(latency), 0.4), 3),
                "$ai_total_cost_usd": 0.0 if failed else round(cost_per_call * rng.uniform(0.3, 2.0), 6),
                "$ai_is_error": failed,
                "$ai_http_status": rng.choice((429, 500)) if failed else 200,
            }
            at += timedelta(seconds=rng.randint(1, 20))
            events.append(self._event("$ai_generation", user, at, properties))
        return events

    def _event(self, name: str, user: _User, at: datetime, properties: dict[str, Any]) -> NewEvent:
        return NewEvent(
            uuid=uuid.UUID(int=self.rng.getrandbits(128), version=4),
            event=name,
            distinct_id=user.distinct_id,
            timestamp=at,
            properties_json=json.dumps(properties, separators=(",", ":")),
        )


def synthetic_events(count: int, now: datetime, seed: int | None = None) -> Iterator[NewEvent]:
    """`count` events over the last `DAYS` days up to `now`, from about one user per 25 events."""
    generator = _Generator(now=now, rng=random.Random(seed))
    generator.make_users(max(20, min(5_000, count // 25)))
    produced = 0
    for session in generator.sessions():
        for event in session:
            if produced == count:
                return
            yield event
            produced += 1


# --- progress ---------------------------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on a terminal; on anything else (a pipe, a log) a line per quarter."""

    def __init__(self, total: int, label: str, out: TextIO = sys.stderr, width: int = 30) -> None:
        self.total, self.label, self.out, self.width = total, label, out, width
        self.tty = out.isatty()
        self.started = time.monotonic()
        self.last_draw = 0.0
        self.last_quarter = -1
        self.finished = False

    def update(self, done: int) -> None:
        if self.finished:
            return
        self.finished = done >= self.total
        fraction = done / self.total if self.total else 1.0
        now = time.monotonic()
        if self.tty:
            if done < self.total and now - self.last_draw < 0.1:
                return
            self.last_draw = now
            filled = int(self.width * fraction)
            bar = "#" * filled + "-" * (self.width - filled)
            rate = done / max(now - self.started, 1e-9)
            self.out.write(f"\r{self.label} [{bar}] {done:,}/{self.total:,} ({rate:,.0f}/s)")
            if done >= self.total:
                self.out.write("\n")
        else:
            quarter = int(fraction * 4)
            if quarter == self.last_quarter:
                return
            self.last_quarter = quarter
            self.out.write(f"{self.label}: {done:,}/{self.total:,}\n")
        self.out.flush()


# --- the dashboard ------------------------------------------------------------------------------------------


def _trends(
    event: str,
    math_name: str = "total",
    *,
    date_from: str = "-30d",
    interval: str = "day",
    display: str | None = None,
    breakdown: str | None = None,
    math_property: str | None = None,
    compare: bool = False,
) -> dict[str, Any]:
    series: dict[str, Any] = {"kind": "EventsNode", "event": event, "name": event, "math": math_name}
    if math_property is not None:
        series["math_property"] = math_property
    source: dict[str, Any] = {
        "kind": "TrendsQuery",
        "series": [series],
        "interval": interval,
        "dateRange": {"date_from": date_from},
    }
    if display is not None:
        source["trendsFilter"] = {"display": display}
    if breakdown is not None:
        source["breakdownFilter"] = {"breakdown": breakdown, "breakdown_type": "event"}
    if compare:
        source["compareFilter"] = {"compare": True}
    return {"kind": "InsightVizNode", "source": source}


def _retention(date_from: str = "-56d") -> dict[str, Any]:
    """Weekly retention of sign-ups: the weeks after signing up in which they came back to a page."""
    source: dict[str, Any] = {
        "kind": "RetentionQuery",
        "dateRange": {"date_from": date_from},
        "retentionFilter": {
            "retentionType": "retention_first_time",
            "period": "Week",
            "totalIntervals": 8,
            "targetEntity": {"id": "signed_up", "type": "events", "name": "signed_up"},
            "returningEntity": {"id": "$pageview", "type": "events", "name": "$pageview"},
        },
    }
    return {"kind": "InsightVizNode", "source": source}


def _funnel(*events: str, date_from: str = "-30d") -> dict[str, Any]:
    steps = [{"kind": "EventsNode", "event": event, "name": event} for event in events]
    source: dict[str, Any] = {
        "kind": "FunnelsQuery",
        "series": steps,
        "dateRange": {"date_from": date_from},
        "funnelsFilter": {
            "funnelVizType": "steps",
            "funnelWindowInterval": 14,
            "funnelWindowIntervalUnit": "day",
        },
    }
    return {"kind": "InsightVizNode", "source": source}


def _lifecycle_or_stickiness(kind: str, date_from: str, interval: str) -> dict[str, Any]:
    series = [{"kind": "EventsNode", "event": "$pageview", "name": "$pageview"}]
    source = {"kind": kind, "series": series, "interval": interval, "dateRange": {"date_from": date_from}}
    return {"kind": "InsightVizNode", "source": source}


# (name, description, query): different kinds, maths, intervals, breakdowns and displays.
DEMO_INSIGHTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("Daily pageviews", "All pageviews per day.", _trends("$pageview")),
    ("Daily active users", "Unique users with a pageview, per day.", _trends("$pageview", "dau")),
    (
        "Weekly active users",
        "Users active in the 7 days up to each day.",
        _trends("$pageview", "weekly_active", date_from="-60d"),
    ),
    (
        "Pageviews by browser",
        "Last 30 days.",
        _trends("$pageview", display="ActionsBarValue", breakdown="$browser"),
    ),
    (
        "Revenue, last 30 days",
        "Sum of `revenue` over purchases, against the 30 days before.",
        _trends("purchase", "sum", math_property="revenue", display="BoldNumber", compare=True),
    ),
    (
        "Average purchase",
        "Mean `revenue` per purchase, per week.",
        _trends(
            "purchase",
            "avg",
            math_property="revenue",
            date_from="-90d",
            interval="week",
            display="ActionsBar",
        ),
    ),
    (
        "Sign-ups by country",
        "Last 90 days.",
        _trends("signed_up", date_from="-90d", display="ActionsPie", breakdown="$geoip_country_code"),
    ),
    (
        "Sessions per week",
        "Unique `$session_id`s with a pageview.",
        _trends("$pageview", "unique_session", date_from="-90d", interval="week", display="ActionsBar"),
    ),
    (
        "Monthly active users",
        "Users active in the 30 days up to each day.",
        _trends("$pageview", "monthly_active", date_from="-90d"),
    ),
    (
        "Pageview to purchase",
        "Users who viewed a page, then signed up, then bought within 14 days (last 30 days).",
        _funnel("$pageview", "signed_up", "purchase"),
    ),
    (
        "Weekly retention",
        "Users who signed up, by week, and the weeks after in which they viewed a page again.",
        _retention(),
    ),
    (
        "Weekly lifecycle",
        "Users viewing pages each week: new, returning, resurrecting, and dormant (negative).",
        _lifecycle_or_stickiness("LifecycleQuery", "-90d", "week"),
    ),
    (
        "Stickiness, last 30 days",
        "How many users viewed pages on exactly 1, 2, 3, … of the last 30 days.",
        _lifecycle_or_stickiness("StickinessQuery", "-30d", "day"),
    ),
)

DEMO_TEXT = (
    "**Tilecast demo.** Every tile below is computed from this team's synthetic events "
    "(pageviews, app screens, sign-ups, purchases and LLM calls over the last 90 days). Run `tilecast demo` "
    "again to add events and recompute."
)
_TEXT_HEIGHT = 2
_TILE_W, _TILE_H = 6, 5


def _layouts(index: int) -> dict[str, Any]:
    """The text first, full width; then insights two by two on the 12-column `sm` grid, one column on `xs`."""
    if index < 0:
        return {
            "sm": {"x": 0, "y": 0, "w": 12, "h": _TEXT_HEIGHT},
            "xs": {"x": 0, "y": 0, "w": 1, "h": _TEXT_HEIGHT},
        }
    return {
        "sm": {
            "x": _TILE_W * (index % 2),
            "y": _TEXT_HEIGHT + _TILE_H * (index // 2),
            "w": _TILE_W,
            "h": _TILE_H,
        },
        "xs": {"x": 0, "y": _TEXT_HEIGHT + _TILE_H * index, "w": 1, "h": _TILE_H},
    }


@dataclass(frozen=True)
class DemoResult:
    key: str
    team_id: int
    project_api_key: str
    dashboard_id: int
    dashboard_created: bool
    events_added: int
    events_total: int
    tiles: int
    errors: list[str]


async def _access(session: AsyncSession) -> tuple[TeamAccess, str]:
    """The demo user's team access through a new key, exactly as a request with that key would have it."""
    user = await get_or_create_user(session, DEMO_EMAIL)
    team = await get_or_create_team(session, user, DEMO_TEAM)
    key = await create_personal_api_key(session, user, scopes=["*"], label="tilecast demo")
    stored = await auth_repository.get_key_with_user(session, hash_key_value(key))
    found = await auth_repository.get_team_with_membership(session, team.id, user.id)
    assert stored is not None and found is not None and found[1] is not None
    return TeamAccess(
        principal=Principal(user=stored.user, key=stored), team=found[0], membership_level=found[1]
    ), key


async def _ingest(
    sessions: async_sessionmaker[AsyncSession], team: Team, count: int, now: datetime, out: TextIO
) -> None:
    progress = Progress(count, "ingesting events", out)
    batch: list[NewEvent] = []
    done = 0
    progress.update(0)
    for event in synthetic_events(count, now):
        batch.append(event)
        if len(batch) == BATCH:
            done += await _insert(sessions, team, batch)
            batch = []
            progress.update(done)
    if batch:
        done += await _insert(sessions, team, batch)
    progress.update(done)


def _encode_json(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))


async def _insert(sessions: async_sessionmaker[AsyncSession], team: Team, batch: list[NewEvent]) -> int:
    # One transaction per batch: an interrupted run keeps what it stored, and a rerun only adds events.
    persons = PersonUpdates()
    seen = []
    for event in batch:
        properties = json.loads(event.properties_json)
        seen.append((event.event, properties))
        if "$set" in properties or "$set_once" in properties:
            persons.add(event.distinct_id, properties.get("$set"), properties.get("$set_once"))
    # The definitions capture would record for these events (the demo stores them without a request).
    definitions = KNOWN.new_for(team.api_token, seen, persons.properties(), time.time())
    async with sessions() as session, session.begin():
        stored_for = await insert_events_for_token(
            session, team.api_token, batch, persons.rows(_encode_json), definitions=definitions
        )
    if definitions is not None:
        KNOWN.learn(team.api_token, definitions)
    if stored_for is None or stored_for.team_id != team.id:
        raise RuntimeError(f"team {team.id}'s project API key no longer finds it")
    return len(batch)


async def _dashboard(session: AsyncSession, access: TeamAccess) -> tuple[Dashboard, bool]:
    """The team's live demo dashboard, created when missing."""
    stmt = (
        select(Dashboard)
        .where(
            Dashboard.team_id == access.team.id,
            Dashboard.name == DEMO_DASHBOARD,
            Dashboard.deleted.is_(False),
        )
        .order_by(Dashboard.id)
        .limit(1)
    )
    found = (await session.execute(stmt)).scalar_one_or_none()
    if found is not None:
        return found, False
    write = DashboardWrite(
        name=DEMO_DASHBOARD,
        description="Synthetic traffic of a small SaaS site, made by `tilecast demo`.",
        tags=["demo"],
        pinned=True,
    )
    created = await create_dashboard(session, access, write, Overrides())
    dashboard = await session.get(Dashboard, created.id)
    assert dashboard is not None
    return dashboard, True


async def _ensure_tiles(session: AsyncSession, access: TeamAccess, dashboard: Dashboard) -> None:
    """Every demo insight and the text on the dashboard once; tiles someone removed are added back."""
    live = (
        await session.execute(
            select(Insight.name)
            .join(DashboardTile, DashboardTile.insight_id == Insight.id)
            .where(
                DashboardTile.dashboard_id == dashboard.id,
                func.coalesce(DashboardTile.deleted, False).is_(False),
                Insight.deleted.is_(False),
            )
        )
    ).scalars()
    present = set(live)
    edits: list[TileEdit] = []
    for index, (name, description, query) in enumerate(DEMO_INSIGHTS):
        if name in present:
            continue
        created = await create_insight(
            session,
            access,
            InsightWrite(
                name=name, description=description, query=query, dashboards=[dashboard.id], saved=True
            ),
        )
        tile_id = next(t.id for t in created.dashboard_tiles if t.dashboard_id == dashboard.id)
        # Explicit places keep the demo's arrangement whatever the default placement of new tiles is.
        edits.append(TileEdit(id=tile_id, layouts=_layouts(index)))
    has_text = (
        await session.execute(
            select(func.count())
            .select_from(DashboardTile)
            .where(
                DashboardTile.dashboard_id == dashboard.id,
                DashboardTile.text_id.is_not(None),
                func.coalesce(DashboardTile.deleted, False).is_(False),
            )
        )
    ).scalar_one()
    if not has_text:
        edits.append(TileEdit(text=TextEdit(body=DEMO_TEXT), layouts=_layouts(-1)))
    if edits:
        await update_dashboard(session, access, dashboard.id, DashboardUpdate(tiles=edits), Overrides())


async def run_demo(
    sessions: async_sessionmaker[AsyncSession], events: int, out: TextIO = sys.stderr
) -> DemoResult:
    """Seed (or top up) the demo team, build (or reuse) its dashboard and compute every tile."""
    # The team, key and dashboard first: they exist (and are reused next time) even if ingestion is cut.
    async with sessions() as session, session.begin():
        access, key = await _access(session)
        dashboard, created = await _dashboard(session, access)
        await _ensure_tiles(session, access, dashboard)
    team = access.team
    if events:
        started = time.monotonic()
        await _ingest(sessions, team, events, datetime.now(UTC), out)
        out.write(f"ingested {events:,} events in {time.monotonic() - started:.1f} s\n")
        # Fresh statistics before computing: right after a bulk load PostgreSQL's estimates (no rows yet, as
        # far as it knows) lead it to plans that read the events once per actor (minutes, not a second), and
        # autovacuum's own ANALYZE comes only a minute or more later.
        async with sessions() as session, session.begin():
            await session.execute(text("ANALYZE events, person"))
    out.write("computing tiles...\n")
    out.flush()
    # The access, team and dashboard objects are detached now; their loaded columns are all the services read.
    async with sessions() as session, session.begin():
        plan = await plan_tiles(session, access, dashboard, {}, RefreshMode.FORCE_BLOCKING)
        total = (
            await session.execute(select(func.count()).select_from(Event).where(Event.team_id == team.id))
        ).scalar_one()
    # Computed as a retrieve computes them: several at once, each in a short session of its own.
    pool = RenderPool(lambda: sessions, get_settings().effective_render_concurrency)
    await compute(plan, pool, plan.pending)
    tiles = [tile_of(t, access) for t in plan.tiles]
    errors = [
        f"{tile.insight.name}: {tile.error.get('message', '')}"
        for tile in tiles
        if tile.insight is not None and tile.error is not None
    ]
    return DemoResult(
        key=key,
        team_id=team.id,
        project_api_key=team.api_token,
        dashboard_id=dashboard.id,
        dashboard_created=created,
        events_added=events,
        events_total=total,
        tiles=len(tiles),
        errors=errors,
    )
