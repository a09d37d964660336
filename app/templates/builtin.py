"""The built-in dashboard templates, shipped as data with fixed ids (PostHog's: `original_template()` /
`legacy_signup_template()` for `DEFAULT_APP`, `_create_website_dashboard` for `WEBSITE_TRAFFIC`, and
`get_llm_analytics_default_template()` for the `llm-analytics` unlisted dashboard).

They are never rows: they appear in every team's template list as global templates (`team_id: null`) and
cannot be edited. Tile queries are PostHog's, with one change: the LLM template's HogQL filter
`distinct_id != properties.$ai_trace_id` is left out (HogQL property filters do not run here).
"""

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class BuiltinTemplate:
    id: UUID
    key: str | None  # the `use_template` key, when it has one
    template_name: str
    dashboard_description: str
    dashboard_filters: dict[str, Any]
    tiles: list[dict[str, Any]]
    tags: list[str]
    availability_contexts: list[str] | None = None
    # Listed by `dashboard_templates/` and usable by `use_template`; the LLM template is offered only by
    # `create_unlisted_dashboard` (PostHog builds it in code, for that action alone).
    listed: bool = True
    variables: list[Any] = field(default_factory=list)


# PostHog's trendsFilter as its insight editor saves it, around the display type.
def _trends_filter(display: str, **extra: Any) -> dict[str, Any]:
    return {
        "display": display,
        "showLegend": False,
        "yAxisScaleType": "linear",
        "showValuesOnSeries": False,
        "smoothingIntervals": 1,
        "showPercentStackView": False,
        "aggregationAxisFormat": "numeric",
        "showAlertThresholdLines": False,
        **extra,
    }


def _layouts(x: int, y: int, w: int, h: int, xs_y: int, xs_min_w: int = 3) -> dict[str, Any]:
    return {
        "sm": {"h": h, "w": w, "x": x, "y": y, "minH": 5, "minW": 3},
        "xs": {"h": 5, "w": 1, "x": 0, "y": xs_y, "minH": 5, "minW": xs_min_w},
    }


def _website_layouts(i: str, x: int, y: int, w: int, h: int, xs_y: int) -> dict[str, Any]:
    return {
        "sm": {"i": i, "x": x, "y": y, "w": w, "h": h, "minW": 3, "minH": 5},
        "xs": {"w": 1, "h": 5, "x": 0, "y": xs_y, "i": i, "minW": 1, "minH": 5},
    }


def _viz(source: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "InsightVizNode", "source": source}


def _pageview(math: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "EventsNode", "math": math, "name": "$pageview", "event": "$pageview", **extra}


_PAGEVIEW_OR_SCREEN = {
    "kind": "GroupNode",
    "operator": "OR",
    "nodes": [
        {"kind": "EventsNode", "event": "$pageview", "name": "$pageview"},
        {"kind": "EventsNode", "event": "$screen", "name": "$screen"},
    ],
    "math": "dau",
    "name": "Pageview or screen",
}


def _active_users(interval: str, date_from: str) -> dict[str, Any]:
    return _viz(
        {
            "kind": "TrendsQuery",
            "series": [_PAGEVIEW_OR_SCREEN],
            "interval": interval,
            "dateRange": {"date_from": date_from, "explicitDate": False},
            "properties": [],
            "trendsFilter": _trends_filter("ActionsLineGraph"),
            "breakdownFilter": {"breakdown_type": "event"},
            "filterTestAccounts": False,
        }
    )


PRODUCT_ANALYTICS = BuiltinTemplate(
    id=UUID("0193a1c4-7d2e-7000-8000-000000000001"),
    key="DEFAULT_APP",
    template_name="Product analytics",
    dashboard_description=(
        "A starter view of how people use your app: how many visit, whether they come back, "
        "where traffic comes from, and how they move through your pages."
    ),
    dashboard_filters={},
    tags=[],
    tiles=[
        {
            "name": "Daily active users (DAUs)",
            "type": "INSIGHT",
            "color": "blue",
            "query": _active_users("day", "-30d"),
            "layouts": _layouts(0, 0, 6, 5, xs_y=0),
            "description": (
                "Shows the number of unique users that view a page or screen in your app every day."
            ),
        },
        {
            "name": "Weekly active users (WAUs)",
            "type": "INSIGHT",
            "color": "green",
            "query": _active_users("week", "-90d"),
            "layouts": _layouts(6, 0, 6, 5, xs_y=5),
            "description": (
                "Shows the number of unique users that view a page or screen in your app every week."
            ),
        },
        {
            "name": "Retention",
            "type": "INSIGHT",
            "color": "blue",
            "query": _viz(
                {
                    "kind": "RetentionQuery",
                    "dateRange": {"date_from": "-7d", "explicitDate": False},
                    "properties": [],
                    "retentionFilter": {
                        "period": "Week",
                        "targetEntity": {"id": "$pageview", "type": "events"},
                        "retentionType": "retention_first_time",
                        "totalIntervals": 11,
                        "returningEntity": {"id": "$pageview", "type": "events"},
                    },
                    "filterTestAccounts": False,
                }
            ),
            "layouts": _layouts(6, 5, 6, 5, xs_y=10),
            "description": "Weekly retention of your users based on pageviews.",
        },
        {
            "name": "Growth accounting",
            "type": "INSIGHT",
            "color": "purple",
            "query": _viz(
                {
                    "kind": "LifecycleQuery",
                    "series": [{"kind": "EventsNode", "name": "$pageview", "event": "$pageview"}],
                    "interval": "week",
                    "dateRange": {"date_from": "-30d", "explicitDate": False},
                    "properties": [],
                    "lifecycleFilter": {"showLegend": False},
                    "filterTestAccounts": False,
                }
            ),
            "layouts": _layouts(0, 5, 6, 5, xs_y=15),
            "description": (
                "How many of your users are new, returning, resurrecting, or dormant each week based on "
                "pageviews."
            ),
        },
        {
            "name": "Referring domain (last 14 days)",
            "type": "INSIGHT",
            "color": "black",
            "query": _viz(
                {
                    "kind": "TrendsQuery",
                    "series": [_pageview("dau")],
                    "interval": "day",
                    "dateRange": {"date_from": "-14d", "explicitDate": False},
                    "properties": [],
                    "trendsFilter": _trends_filter("ActionsBarValue"),
                    "breakdownFilter": {"breakdown": "$referring_domain", "breakdown_type": "event"},
                    "filterTestAccounts": False,
                }
            ),
            "layouts": _layouts(0, 10, 6, 5, xs_y=20),
            "description": (
                "Shows the most common referring domains for your users over the past 14 days. "
                "Pageviews only."
            ),
        },
        {
            "name": "Pageview funnel, by browser",
            "type": "INSIGHT",
            "color": "green",
            "query": _viz(
                {
                    "kind": "FunnelsQuery",
                    "series": [
                        {
                            "kind": "EventsNode",
                            "name": "$pageview",
                            "event": "$pageview",
                            "custom_name": f"{ordinal} page view",
                        }
                        for ordinal in ("First", "Second", "Third")
                    ],
                    "interval": "day",
                    "dateRange": {"date_from": "-7d", "explicitDate": False},
                    "properties": [],
                    "funnelsFilter": {
                        "layout": "horizontal",
                        "exclusions": [],
                        "funnelVizType": "steps",
                        "funnelOrderType": "ordered",
                        "funnelStepReference": "total",
                        "funnelWindowInterval": 14,
                        "breakdownAttributionType": "first_touch",
                        "funnelWindowIntervalUnit": "day",
                    },
                    "breakdownFilter": {"breakdown": "$browser", "breakdown_type": "event"},
                    "filterTestAccounts": False,
                }
            ),
            "layouts": _layouts(6, 10, 6, 5, xs_y=25),
            "description": (
                "This example funnel shows how many of your users have completed 3 page views, broken down "
                "by browser. Pageviews only."
            ),
        },
    ],
)


_GOOGLE = {"key": "$referring_domain", "operator": "icontains", "type": "event", "value": "google"}
_NO_UTM = {"key": "utm_source", "operator": "is_not_set", "type": "event", "value": "is_not_set"}
_NO_QUERY_STRING = {"key": "$current_url", "operator": "not_icontains", "type": "event", "value": "?"}


def _and(*filters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "AND", "values": [{"type": "AND", "values": list(filters)}]}


def _website(
    series: list[dict[str, Any]],
    interval: str,
    display: str,
    *,
    properties: Any = None,
    breakdown: dict[str, Any] | None = None,
    compare: bool = False,
    formula: str | None = None,
) -> dict[str, Any]:
    source: dict[str, Any] = {
        "breakdownFilter": breakdown or {"breakdown_type": "event"},
        "dateRange": {"date_from": "-30d", "explicitDate": False},
        "filterTestAccounts": False,
        "interval": interval,
        "kind": "TrendsQuery",
        "properties": properties if properties is not None else [],
        "series": series,
        "trendsFilter": _trends_filter(display, **({"formula": formula} if formula else {})),
    }
    if compare:
        source["compareFilter"] = {"compare": True}
    return _viz(source)


def _website_tile(
    name: str, query: dict[str, Any], layouts: dict[str, Any], color: str | None, description: str = ""
) -> dict[str, Any]:
    return {
        "type": "INSIGHT",
        "name": name,
        "description": description,
        "query": query,
        "layouts": layouts,
        "color": color,
    }


WEBSITE_TRAFFIC = BuiltinTemplate(
    id=UUID("0193a1c4-7d2e-7000-8000-000000000002"),
    key="WEBSITE_TRAFFIC",
    template_name="Website traffic",
    dashboard_description="",
    dashboard_filters={"date_from": "-30d"},
    tags=["marketing"],
    tiles=[
        _website_tile(
            "Website Unique Users (Total)",
            _website([_pageview("dau")], "day", "BoldNumber", compare=True),
            _website_layouts("21", 0, 0, 6, 5, xs_y=0),
            "blue",
            "Shows the number of unique users that use your app every day.",
        ),
        _website_tile(
            "Organic SEO Unique Users (Total)",
            _website(
                [_pageview("dau")], "day", "BoldNumber", compare=True, properties=_and(_GOOGLE, _NO_UTM)
            ),
            _website_layouts("22", 6, 0, 6, 5, xs_y=5),
            "green",
        ),
        _website_tile(
            "Website Unique Users (Breakdown)",
            _website([_pageview("dau")], "week", "ActionsBar"),
            _website_layouts("23", 0, 5, 6, 5, xs_y=10),
            "blue",
        ),
        _website_tile(
            "Organic SEO Unique Users (Breakdown)",
            _website([_pageview("dau", properties=[_GOOGLE, _NO_UTM])], "week", "ActionsBar"),
            _website_layouts("24", 6, 5, 6, 5, xs_y=15),
            "green",
        ),
        _website_tile(
            "Sessions Per User",
            _website(
                [_pageview("dau"), _pageview("unique_session")], "week", "ActionsLineGraph", formula="B/A"
            ),
            _website_layouts("25", 0, 10, 6, 5, xs_y=20),
            None,
        ),
        _website_tile(
            "Pages Per User",
            _website([_pageview("total"), _pageview("dau")], "week", "ActionsLineGraph", formula="A/B"),
            _website_layouts("26", 6, 10, 6, 5, xs_y=25),
            None,
        ),
        _website_tile(
            "Top Website Pages (Overall)",
            _website(
                [_pageview("unique_session")],
                "day",
                "ActionsBarValue",
                properties=_and(_NO_QUERY_STRING),
                breakdown={"breakdown": "$current_url", "breakdown_type": "event"},
            ),
            _website_layouts("27", 0, 15, 6, 8, xs_y=30),
            "black",
        ),
        _website_tile(
            "Top Website Pages (via Google)",
            _website(
                [_pageview("unique_session")],
                "day",
                "ActionsBarValue",
                properties=_and(_NO_QUERY_STRING, _GOOGLE),
                breakdown={"breakdown": "$current_url", "breakdown_type": "event"},
            ),
            _website_layouts("28", 6, 15, 6, 8, xs_y=35),
            "black",
        ),
        _website_tile(
            "Website Users by Location",
            _website(
                [_pageview("dau")],
                "day",
                "WorldMap",
                breakdown={"breakdown": "$geoip_country_code", "breakdown_type": "person"},
            ),
            _website_layouts("29", 0, 23, 12, 8, xs_y=40),
            None,
        ),
    ],
)


def _ai(math: str | None = None, **extra: Any) -> dict[str, Any]:
    series: dict[str, Any] = {"event": "$ai_generation", "name": "$ai_generation", "kind": "EventsNode"}
    if math is not None:
        series["math"] = math
    return {**series, **extra}


def _llm_tile(
    name: str,
    series: list[dict[str, Any]],
    layouts: dict[str, Any],
    *,
    description: str = "",
    explicit_date: bool = False,
    properties: list[Any] | None = None,
    **source: Any,
) -> dict[str, Any]:
    date_range: dict[str, Any] = {"date_from": "-7d"}
    if explicit_date:
        date_range["explicitDate"] = True
    return {
        "type": "INSIGHT",
        "name": name,
        "description": description,
        "query": _viz(
            {
                "kind": "TrendsQuery",
                "series": series,
                **source,
                "dateRange": date_range,
                "properties": properties or [],
                "filterTestAccounts": False,
            }
        ),
        "layouts": layouts,
    }


_COST = {"math_property": "$ai_total_cost_usd"}

LLM_ANALYTICS = BuiltinTemplate(
    id=UUID("0193a1c4-7d2e-7000-8000-000000000003"),
    key=None,
    template_name="LLM Analytics Default",
    dashboard_description="Overview of your LLM usage, costs, and performance",
    dashboard_filters={"date_from": "-7d"},
    tags=["llm-analytics"],
    availability_contexts=["llm-analytics"],
    listed=False,
    tiles=[
        _llm_tile(
            "Traces",
            [_ai("hogql", math_hogql="COUNT(DISTINCT properties.$ai_trace_id)")],
            _layouts(0, 0, 4, 5, xs_y=0),
        ),
        # PostHog also filters on HogQL `distinct_id != properties.$ai_trace_id` here (left out).
        _llm_tile(
            "Generative AI users",
            [_ai("dau")],
            _layouts(4, 0, 4, 5, xs_y=5),
            description="To count users, set `distinct_id` in LLM tracking.",
        ),
        _llm_tile(
            "Total cost (USD)",
            [_ai("sum", **_COST)],
            _layouts(8, 0, 4, 5, xs_y=10),
            explicit_date=True,
            trendsFilter={"aggregationAxisPrefix": "$", "decimalPlaces": 4, "display": "BoldNumber"},
        ),
        # As "Generative AI users", without PostHog's HogQL filter.
        _llm_tile(
            "Cost per user (USD)",
            [_ai("sum", **_COST), _ai("dau")],
            _layouts(0, 5, 6, 5, xs_y=15),
            description="Average cost for each generative AI user active in the data point's period.",
            trendsFilter={"formula": "A / B", "aggregationAxisPrefix": "$", "decimalPlaces": 2},
        ),
        _llm_tile(
            "Cost by model (USD)",
            [_ai("sum", **_COST)],
            _layouts(6, 5, 6, 5, xs_y=20),
            explicit_date=True,
            breakdownFilter={"breakdown_type": "event", "breakdown": "$ai_model"},
            trendsFilter={
                "aggregationAxisPrefix": "$",
                "decimalPlaces": 2,
                "display": "ActionsBarValue",
                "showValuesOnSeries": True,
            },
        ),
        _llm_tile("Generation calls", [_ai()], _layouts(0, 10, 4, 5, xs_y=25)),
        _llm_tile(
            "AI Errors",
            [_ai()],
            _layouts(4, 10, 4, 5, xs_y=30),
            description="Failed AI generation calls",
            properties=[{"type": "event", "key": "$ai_is_error", "operator": "exact", "value": "true"}],
        ),
        _llm_tile(
            "Generation latency by model (median)",
            [_ai("median", math_property="$ai_latency")],
            _layouts(8, 10, 4, 5, xs_y=35),
            breakdownFilter={"breakdown": "$ai_model"},
            trendsFilter={"aggregationAxisPostfix": " s", "decimalPlaces": 2},
        ),
        _llm_tile(
            "Generations by HTTP status",
            [_ai()],
            _layouts(0, 15, 4, 5, xs_y=40),
            explicit_date=True,
            breakdownFilter={"breakdown": "$ai_http_status"},
            trendsFilter={"display": "ActionsBarValue"},
        ),
    ],
)

BUILTIN_TEMPLATES = (PRODUCT_ANALYTICS, WEBSITE_TRAFFIC, LLM_ANALYTICS)
LISTED = tuple(t for t in BUILTIN_TEMPLATES if t.listed)
BY_ID = {t.id: t for t in BUILTIN_TEMPLATES}
# `use_template` keys and names; the LLM template is reached by its tag alone.
BY_KEY = {t.key: t for t in LISTED if t.key}
BY_NAME = {t.template_name: t for t in LISTED}
# `create_unlisted_dashboard` tags.
BY_UNLISTED_TAG = {"llm-analytics": LLM_ANALYTICS}
