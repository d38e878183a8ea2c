"""GET /docs works offline: Swagger UI's script and stylesheet come from the swagger-ui-bundle package, not a CDN."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import PurePosixPath

import pytest
from swagger_ui_bundle import swagger_ui_path

CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css"}


class AssetURLs(HTMLParser):
    """Every script ``src`` and stylesheet ``href`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.urls.append(str(found["src"]))
        elif tag == "link" and found.get("rel") == "stylesheet" and found.get("href"):
            self.urls.append(str(found["href"]))


async def asset_urls(client) -> list[str]:  # type: ignore[no-untyped-def]
    page = await client.get("/docs")
    assert page.status_code == 200 and page.content_type.startswith("text/html")
    parser = AssetURLs()
    parser.feed(await page.get_data(as_text=True))
    return parser.urls


async def test_docs_page_loads_swagger_ui_from_the_server_itself(client) -> None:
    urls = await asset_urls(client)
    assert {PurePosixPath(url).suffix for url in urls} == {".js", ".css"}
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), f"{url} is not on this server"
        response = await client.get(url)
        assert response.status_code == 200, url
        assert response.content_type.split(";")[0] == CONTENT_TYPES[PurePosixPath(url).suffix]
        assert await response.get_data() == (swagger_ui_path / PurePosixPath(url).name).read_bytes()


async def test_docs_and_their_assets_need_no_api_key(make_client) -> None:
    async with make_client(api_key="s3cret") as client:
        for url in await asset_urls(client):
            assert (await client.get(url)).status_code == 200, url


@pytest.mark.parametrize("path", ["/docs/assets/..%2F__init__.py", "/docs/assets/missing.js"])
async def test_docs_assets_serve_only_the_bundle(client, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert "error" in await response.get_json()
