"""What a FunnelsQuery refuses: 400s naming the field (`attr`)."""

from typing import Any

import httpx
import pytest

from tests.factories import Actor
from tests.funnels_helpers import refused, step

pytestmark = pytest.mark.both_backends

TWO = (step("a"), step("b"))


@pytest.mark.parametrize(
    ("steps", "source", "attr", "words"),
    [
        ((step("a"),), {}, "query__source__series", "at least 2 steps"),
        (
            TWO,
            {"funnelsFilter": {"funnelToStep": 2}},
            "query__source__funnelsFilter__funnelToStep",
            "funnelToStep",
        ),
        (
            TWO,
            {"funnelsFilter": {"funnelFromStep": 1}},
            "query__source__funnelsFilter__funnelFromStep",
            "funnelFromStep",
        ),
        (
            TWO,
            {"funnelsFilter": {"funnelWindowInterval": 0}},
            "query__source__funnelsFilter__funnelWindowInterval",
            "at least 1",
        ),
        (
            TWO,
            {"funnelsFilter": {"funnelWindowIntervalUnit": "fortnight"}},
            "query__source__funnelsFilter__funnelWindowIntervalUnit",
            "funnelWindowIntervalUnit",
        ),
        (
            TWO,
            {"funnelsFilter": {"funnelOrderType": "random"}},
            "query__source__funnelsFilter__funnelOrderType",
            "funnelOrderType",
        ),
        (
            TWO,
            {
                "funnelsFilter": {
                    "exclusions": [
                        {"kind": "EventsNode", "event": "x", "funnelFromStep": 1, "funnelToStep": 1}
                    ]
                }
            },
            "query__source__funnelsFilter__exclusions__0__funnelFromStep",
            "funnelFromStep",
        ),
        (
            TWO,
            {
                "funnelsFilter": {
                    "exclusions": [
                        {"kind": "EventsNode", "event": "b", "funnelFromStep": 0, "funnelToStep": 1}
                    ]
                }
            },
            "query__source__funnelsFilter__exclusions__0",
            "matches step 1",
        ),
        (
            TWO,
            {"funnelsFilter": {"breakdownAttributionType": "step", "breakdownAttributionValue": 5}},
            "query__source__funnelsFilter__breakdownAttributionValue",
            "breakdownAttributionValue",
        ),
        (
            TWO,
            {
                "funnelsFilter": {
                    "funnelOrderType": "unordered",
                    "breakdownAttributionType": "step",
                    "breakdownAttributionValue": 1,
                }
            },
            "query__source__funnelsFilter__breakdownAttributionValue",
            "unordered",
        ),
    ],
)
async def test_invalid(
    client: httpx.AsyncClient, actor: Actor, steps: Any, source: dict[str, Any], attr: str, words: str
) -> None:
    body = await refused(client, actor, *steps, **source)
    assert body["attr"] == attr
    assert body["code"] == "invalid_query"
    assert words in body["detail"]


@pytest.mark.parametrize(
    ("steps", "source", "attr", "words"),
    [
        ((step("a"), {"kind": "ActionsNode", "id": 3}), {}, "query__source__series__1__kind", "ActionsNode"),
        (
            (step("a"), step("b", optionalInFunnel=True)),
            {},
            "query__source__series__1__optionalInFunnel",
            "optionalInFunnel",
        ),
        (
            (step("a"), step("b", math="first_time_for_user")),
            {},
            "query__source__series__1__math",
            "first_time_for_user",
        ),
        (
            TWO,
            {"funnelsFilter": {"funnelAggregateByHogQL": "properties.$session_id"}},
            "query__source__funnelsFilter__funnelAggregateByHogQL",
            "funnelAggregateByHogQL",
        ),
        (
            TWO,
            {"funnelsFilter": {"somethingNew": 1}},
            "query__source__funnelsFilter__somethingNew",
            "somethingNew",
        ),
        (
            TWO,
            {"aggregation_group_type_index": 0},
            "query__source__aggregation_group_type_index",
            "aggregation_group_type_index",
        ),
        (TWO, {"compareFilter": {"compare": True}}, "query__source__compareFilter", "compare"),
        (
            TWO,
            {"breakdownFilter": {"breakdown": 3, "breakdown_type": "cohort"}},
            "query__source__breakdownFilter__breakdown_type",
            "cohort",
        ),
        (
            TWO,
            {"funnelsFilter": {"funnelVizType": "trends"}, "breakdownFilter": {"breakdown": "$browser"}},
            "query__source__breakdownFilter",
            "trends",
        ),
        (
            TWO,
            {
                "funnelsFilter": {
                    "funnelOrderType": "unordered",
                    "exclusions": [
                        {"kind": "EventsNode", "event": "x", "funnelFromStep": 0, "funnelToStep": 1}
                    ],
                }
            },
            "query__source__funnelsFilter__exclusions",
            "unordered",
        ),
        (TWO, {"samplingFactor": 0.1}, "query__source__samplingFactor", "samplingFactor"),
    ],
)
async def test_unsupported(
    client: httpx.AsyncClient, actor: Actor, steps: Any, source: dict[str, Any], attr: str, words: str
) -> None:
    body = await refused(client, actor, *steps, **source)
    assert body["attr"] == attr
    assert body["code"] == "unsupported_query"
    assert words in body["detail"]


async def test_display_only_keys_are_accepted(client: httpx.AsyncClient, actor: Actor) -> None:
    from tests.funnels_helpers import funnel

    results = await funnel(
        client,
        actor,
        *TWO,
        funnelsFilter={"layout": "horizontal", "funnelStepReference": "previous", "showLegend": True},
    )
    assert results == []
