"""Pure ASGI middleware: count and time every HTTP request by its route template.

The label is the template (`/api/v1/tasks/configs/{config_id}`), never the raw path, so the
number of series stays bounded whatever paths clients send.
"""

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend import metrics
from backend.api.route_templates import RouteTemplates

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


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
