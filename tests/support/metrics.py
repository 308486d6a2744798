"""Read `GET /metrics` the way Prometheus does, and pick out single samples."""

from collections.abc import Awaitable, Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from backend import metrics


def parse(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def rendered() -> list[Sample]:
    """What /metrics would serve, read without an app (every process's samples)."""
    return parse(metrics.render(runs_in_flight=None).decode())


async def scrape(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> list[Sample]:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sample's value; 0 for a labelled series not written yet (Prometheus reads it so)."""
    found = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else 0.0


def reader(client: httpx.AsyncClient, name: str, **labels: str) -> Callable[[], Awaitable[float]]:
    """A probe for `eventually`: the sample's current value."""

    async def probe() -> float:
        return value(await scrape(client), name, **labels)

    return probe
