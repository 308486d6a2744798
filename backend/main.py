"""The FastAPI app: factory and lifespan (opens and closes the engine, Redis and the broker)."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from taskiq_aio_pika import AioPikaBroker

from backend import broker as broker_client
from backend import metrics
from backend.api import console, errors, openapi
from backend.api.http_metrics import HttpMetricsMiddleware
from backend.api.middleware import BodySizeLimitMiddleware, RequestLogMiddleware
from backend.api.router import api_router
from backend.api.routes import health
from backend.api.routes import metrics as metrics_route
from backend.config import Settings, get_settings
from backend.log import configure_logging
from backend.resources import Resources
from backend.services import users
from backend.tasks import load_all, registry


def attach_resources(app: FastAPI) -> Resources:
    """Open the resources and put them on app.state for the dependencies (backend/api/deps.py)."""
    resources = app.state.resources = Resources.open(app.state.settings)
    return resources


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    resources = attach_resources(app)
    try:
        async with resources.sessionmaker() as session:
            await users.ensure_first_superuser(
                session,
                email=settings.first_superuser,
                password=settings.first_superuser_password.get_secret_value(),
            )
        await broker_client.connect_quietly(app.state.broker)
        tune_garbage_collection()
        yield
    finally:
        if broker_client.is_connected(app.state.broker):
            await app.state.broker.shutdown()
        await resources.close()


# Young objects collected after this many allocations (Python's default 700): a list page
# allocates thousands, so at 700 a collection ran every few requests, walking the objects of
# every request in flight; a tenth of the page's CPU went to the collector.
GC_YOUNG_THRESHOLD = 7_000


def tune_garbage_collection() -> None:
    """Fewer young collections (GC_YOUNG_THRESHOLD), and what exists once the app has started
    (modules, classes, schemas, routes: about 150,000 objects, alive for good) left out of
    the full collections: each walked them all, up to 150 ms with every request in flight
    waiting, which was the p99. Once per process: later apps in it (the tests') add none."""
    if gc.get_freeze_count() == 0:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
        gc.freeze()


def create_app(settings: Settings | None = None, broker: AioPikaBroker | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging()
    load_all(settings.task_module_names)  # raises TaskModuleError: the API does not start
    metrics.initialise([task_type.name for task_type in registry.all_types()])
    app = FastAPI(title="Taskhub", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.broker = broker or broker_client.broker
    errors.install(app)
    openapi.install(app)
    app.include_router(health.router)
    app.include_router(api_router)
    if settings.metrics_enabled:
        app.include_router(metrics_route.router)
    console.mount(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.metrics_enabled:
        app.add_middleware(HttpMetricsMiddleware)
    app.add_middleware(RequestLogMiddleware)
    return app


app = create_app()
