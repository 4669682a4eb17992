"""Small aiohttp servers on 127.0.0.1 for the provider and CLI tests: a list endpoint in whatever shape a test
needs, run on the test's own event loop. The `local_app` fixture (tests/conftest.py) starts them and cleans up.
"""

from __future__ import annotations

from aiohttp import web


def routes_app(routes: dict[str, object], token: str | None = None) -> web.Application:
    """GET <path> answers the JSON given (a str: as an HTML page; an int: that status); 401 without `token`;
    every other path 404s."""

    async def handler(request: web.Request) -> web.Response:
        if token and request.headers.get("Authorization") != f"Bearer {token}":
            return web.json_response({"error": {"message": "Incorrect API key provided."}}, status=401)
        body = routes[request.path]
        if isinstance(body, int):
            return web.json_response({"error": {"message": "nope"}}, status=body)
        if isinstance(body, str):  # a web page where a list was expected
            return web.Response(text=body, content_type="text/html")
        return web.json_response(body)

    app = web.Application()
    for path in routes:
        app.router.add_get(path, handler)
    return app


async def start_app(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve `app` on a free loopback port: (its runner, to clean up; the base URL, ending in /v1)."""
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
