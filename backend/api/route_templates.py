"""The full path template of a matched route (`/api/v1/tasks/configs/{config_id}`).

FastAPI keeps included routers nested: the route in `scope["route"]` knows only its own
router's prefix, so the full templates come from `iter_route_contexts` (what the OpenAPI
schema is built from), read once per app and again when routes were added since. Used for
the metrics' route label and for the access rules, both keyed by template.
"""

from typing import Any
from weakref import WeakKeyDictionary

from fastapi.routing import iter_route_contexts
from starlette.types import Scope

UNMATCHED = "unmatched"  # no route matched (404s, and requests refused before routing)


class RouteTemplates:
    """Templates by route object, per app."""

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
