"""The pages of a share's links without a browser: `/shared/{token}` and `/embedded/{token}` carry the
renderer over the share's stream (its token, or the JWT that opened a locked share), the share's settings, the
theme's colors and the number of tiles; a locked share serves the unlock form and names nothing."""

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from app.web.pages import asset_url
from tests.factories import Actor
from tests.sharing_helpers import jwt_for, patch_sharing, protected_dashboard, shared_dashboard
from tests.test_web_pages import assert_no_inline_code


def _root(document: str) -> dict[str, Any]:
    page = assert_no_inline_code(document)
    return next(attrs for tag, attrs in page.tags if tag == "main")


def _og(document: str) -> dict[str, str | None]:
    page = assert_no_inline_code(document)
    return {
        attrs["property"] or "": attrs["content"]
        for tag, attrs in page.tags
        if tag == "meta" and attrs.get("property")
    }


def _stream(root: dict[str, Any]) -> tuple[str, dict[str, list[str]]]:
    url = urlsplit(root["data-stream-url"])
    return url.path, parse_qs(url.query)


async def test_a_share_page_draws_the_dashboard_over_the_shares_stream(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    theme = await client.post(
        actor.url("data_color_themes/"),
        json={"name": "Mine", "colors": ["#112233", "#445566"]},
        headers=actor.headers,
    )
    assert theme.status_code == 201, theme.text
    dashboard, token = await shared_dashboard(
        client, actor, name="Q4 <review>", description="For the board", data_color_theme_id=theme.json()["id"]
    )
    text = await client.patch(
        actor.url(f"dashboards/{dashboard}/"),
        json={"tiles": [{"text": {"body": "hi"}}]},
        headers=actor.headers,
    )
    assert text.status_code == 200, text.text
    await patch_sharing(
        client, actor, dashboard, settings={"noHeader": True, "legend": True, "detailed": True}
    )
    for prefix in ("shared", "embedded"):
        page = await client.get(f"/{prefix}/{token}")
        assert page.status_code == 200
        assert "frame-ancestors *" in page.headers["content-security-policy"]
        assert "x-frame-options" not in page.headers
        root = _root(page.text)
        path, query = _stream(root)
        assert path == f"/api/environments/{actor.team.id}/dashboards/{dashboard}/stream_tiles/"
        assert query == {"sharing_access_token": [token]}
        assert json.loads(root["data-options"]) == {
            "noHeader": True,
            "legend": True,
            "whitelabel": False,
            "detailed": True,
            "colors": ["#112233", "#445566"],
            "expectedTiles": 2,
            "controls": False,
        }
        assert _og(page.text) == {
            "og:type": "website",
            "og:title": "Q4 <review>",
            "og:description": "For the board",
        }
        assert "<title>Q4 &lt;review&gt; · Tilecast</title>" in page.text
        assert f'src="{asset_url("dashboard.js")}"' in page.text
        # The stream the page opens answers the share's token.
        stream = await client.get(root["data-stream-url"])
        assert stream.status_code == 200 and '"complete"' in stream.text, stream.text


async def test_a_whitelabel_share_without_a_theme_uses_the_default_palette(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    dashboard, token = await shared_dashboard(client, actor, name="Plain")
    await patch_sharing(client, actor, dashboard, settings={"whitelabel": True})
    page = await client.get(f"/embedded/{token}")
    options = json.loads(_root(page.text)["data-options"])
    assert options["whitelabel"] is True and options["legend"] is False and options["colors"] is None
    assert options["expectedTiles"] == 1
    assert "<title>Plain</title>" in page.text


async def test_a_locked_share_serves_the_unlock_form_and_names_nothing(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    share = await protected_dashboard(client, actor, name="Secret plans", description="Do not read")
    for prefix in ("shared", "embedded"):
        page = await client.get(f"/{prefix}/{share.token}")
        assert page.status_code == 200
        assert "Secret plans" not in page.text and "Do not read" not in page.text
        assert _og(page.text) == {}
        scanned = assert_no_inline_code(page.text)
        assert [a["src"] for t, a in scanned.tags if t == "script"] == [asset_url("unlock.js")]
        form = next(attrs for tag, attrs in scanned.tags if tag == "form")
        assert form["action"] == f"/{prefix}/{share.token}" and form["id"] == "tilecast-unlock"
        assert "frame-ancestors *" in page.headers["content-security-policy"]
        assert "sharing_access_token" not in page.text


async def test_an_unlocked_share_streams_with_the_jwt_that_opened_it(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    share = await protected_dashboard(client, actor, name="Secret plans")
    jwt = await jwt_for(client, share)  # the client keeps the cookie
    by_cookie = await client.get(f"/shared/{share.token}")
    root = _root(by_cookie.text)
    assert _stream(root)[1] == {"sharing_access_token": [jwt]}
    assert _og(by_cookie.text)["og:title"] == "Secret plans"
    client.cookies.clear()
    assert "tilecast-unlock" in (await client.get(f"/shared/{share.token}")).text
    # Where no cookie is sent (a cross-site iframe), the JWT in the address opens it.
    by_query = await client.get(f"/embedded/{share.token}", params={"sharing_access_token": jwt})
    root = _root(by_query.text)
    assert _stream(root)[1] == {"sharing_access_token": [jwt]}
    stream = await client.get(root["data-stream-url"])
    assert stream.status_code == 200 and '"complete"' in stream.text, stream.text
    # The bare token does not stream a locked share.
    bare = await client.get(
        f"/api/environments/{actor.team.id}/dashboards/{share.dashboard}/stream_tiles/",
        params={"sharing_access_token": share.token},
    )
    assert bare.status_code == 401
    # An invalid JWT is no unlock.
    forged = await client.get(f"/shared/{share.token}", params={"sharing_access_token": jwt[:-4] + "AAAA"})
    assert "tilecast-unlock" in forged.text
