"""The OpenAPI description is built from the router and covers every API route, core and plugin."""

from __future__ import annotations

from portal_core.openapi import described, is_api_path


def api_routes(app) -> set[tuple[str, str]]:
    return {(route.method, route.resource.canonical) for route in app.router.routes()
            if route.method != "HEAD" and route.resource is not None and is_api_path(route.resource.canonical)}


async def test_every_api_route_is_described_and_the_document_matches_the_router(client):
    app = client.server.app
    undocumented = sorted(f"{method} {path}" for method, path in api_routes(app)
                          if described(next(r.handler for r in app.router.routes()
                                            if r.method == method and r.resource.canonical == path)) is None)
    assert undocumented == [], f"API routes without @operation (portal_core.openapi): {undocumented}"

    response = await client.get("/api/openapi.json")
    assert response.status == 200
    spec = await response.json()
    assert spec["openapi"].startswith("3.1")
    in_spec = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    assert in_spec == api_routes(app)
    upload = spec["paths"]["/api/artifacts"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert {"413", "422", "401"} <= set(upload["responses"])
    assert spec["paths"]["/api/artifacts/{id}"]["delete"]["parameters"][0] == {
        "name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    assert spec["paths"]["/health"]["get"]["security"] == []


def test_the_api_is_its_prefixes_and_two_exact_paths_and_nothing_that_merely_starts_like_them():
    assert all(is_api_path(p) for p in ("/api/me", "/webhooks/stripe", "/health", "/health/ready", "/metrics"))
    assert not any(is_api_path(p) for p in ("/", "/account", "/healthy-living", "/metrics-explained", "/apiary"))
