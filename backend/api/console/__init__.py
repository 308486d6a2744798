"""The operator console: a static front end under /console that calls the JSON API.

The pages are plain files (one HTML shell, ES modules, one stylesheet) served from this
package; every piece of data comes from /api/v1 with the signed-in user's access token, so
the console has exactly the API's authorization and rules. Each /console response carries a
strict Content-Security-Policy: scripts, styles and connections only from this origin, no
inline code, no framing.
"""

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.datastructures import MutableHeaders
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).parent / "static"
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate on every load (ETag), so an upgrade never mixes old and new modules.
    "Cache-Control": "no-cache",
}


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response under /console, errors and redirects too
    (an app-level middleware, because a 404 of the static files is rendered outside them)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/console" or path.startswith("/console/")):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def mount(app: FastAPI) -> None:
    """Serve the console at /console/ (and redirect / and /console there)."""

    async def to_console() -> RedirectResponse:
        return RedirectResponse("/console/")

    # The root has nothing else to show: a browser opening the service lands in the console.
    app.add_api_route("/", to_console, methods=["GET"], include_in_schema=False)
    app.add_api_route("/console", to_console, methods=["GET"], include_in_schema=False)
    app.mount("/console", StaticFiles(directory=STATIC_DIR, html=True))
    app.add_middleware(SecurityHeaders)
