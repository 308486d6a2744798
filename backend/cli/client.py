"""The HTTP API, as the CLI calls it: one bearer token, the one JSON error shape."""

from typing import Any

import httpx

from backend.cli.credentials import Credentials
from backend.cli.errors import CliError

API = "/api/v1"
TIMEOUT_SECONDS = 30.0
PAGE = 100  # the API's largest page


class Client:
    def __init__(self, *, url: str, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url + API, headers=headers, timeout=TIMEOUT_SECONDS)

    @classmethod
    def signed_in(cls, credentials: Credentials) -> "Client":
        return cls(url=credentials.url, token=credentials.token)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON answer (None for 204); CliError with the API's message."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(f"Cannot reach the API at {self.url}: {exc}") from exc
        if response.is_error:
            raise _api_error(response)
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        clean = {name: value for name, value in params.items() if value is not None}
        return self.call("GET", path, params=clean)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, json=body)

    def all_pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a paged listing."""
        items: list[dict[str, Any]] = []
        while True:
            page = self.get(path, limit=PAGE, offset=len(items), **params)
            items += page["items"]
            if not page["items"] or len(items) >= page["total"]:
                return items

    def config_by_name(self, name: str, **params: Any) -> dict[str, Any]:
        """The config named exactly `name` (the API's search is by substring)."""
        for config in self.all_pages("/tasks/configs", search=name):
            if config["name"] == name:
                if params:
                    return self.get(f"/tasks/configs/{config['id']}", **params)
                return config
        raise CliError(f"No config named {name!r}")


def _api_error(response: httpx.Response) -> CliError:
    try:
        error = response.json()["error"]
        message, fields = f"{error['message']} ({response.status_code})", error.get("fields")
    except (ValueError, KeyError, TypeError):
        message, fields = f"The API answered {response.status_code}: {response.text[:200]}", []
    if response.status_code == 401:
        message += "; run `taskhub login` again"
    return CliError(message, fields=fields)
