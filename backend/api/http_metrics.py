"""Pure ASGI middleware: count and time every HTTP request by its route template.

The label is the template (`/api/v1/tasks/configs/{config_id}`), never the raw path, so the
number of series stays bounded whatever paths clients send.
"""

import time
from typing import Any
from weakref import WeakKeyDictionary

from fastapi.routing import iter_route_contexts
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend import metrics

UNMATCHED = "unmatched"  # no route matched (404s, and requests refused before routing)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RouteTemplates:
    """The full path template of a matched route.

    FastAPI keeps included routers nested: the route in `scope["route"]` knows only its own
    router's prefix, so the full templates come from `iter_route_contexts` (what the OpenAPI
    schema is built from), read once per app and again when routes were added since.
    """

    def __init__(self) -> None:
        self._paths: WeakKeyDictionary[Any, dict[int, str]] = WeakKeyDictionary()

    def of(self, app: Any, route: Any) -> str:
        paths = self._paths.setdefault(app, {})
        if id(route) not in paths:
            for context in iter_route_contexts(app.routes):
                if context.path_format is not None:
                    paths[id(context.original_route)] = context.path_format
            paths.setdefault(id(route), getattr(route, "path", None) or UNMATCHED)
        return paths[id(route)]

    def for_scope(self, scope: Scope, *, root_path: str) -> str:
        """Call after the app handled the request: routing has filled in the scope by then."""
        mounted_at = scope.get("root_path", "")[len(root_path) :]  # set by a Mount on the way
        route = scope.get("route")
        if route is not None:
            return mounted_at + self.of(scope["app"], route)
        return f"{mounted_at}/{{path}}" if mounted_at else UNMATCHED


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.templates = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root_path = scope.get("root_path", "")
        status = 500
        started = time.perf_counter()

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            route = self.templates.for_scope(scope, root_path=root_path)
            metrics.http_requests.labels(method, route, str(status)).inc()
            metrics.http_duration.labels(method, route).observe(time.perf_counter() - started)
