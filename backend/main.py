"""The FastAPI app: factory and lifespan (opens and closes the engine, Redis and the broker)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from taskiq_aio_pika import AioPikaBroker

from backend import broker as broker_client
from backend import gc_tuning, metrics
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
        gc_tuning.tune(gc_tuning.API_THRESHOLDS)
        yield
    finally:
        if broker_client.is_connected(app.state.broker):
            await app.state.broker.shutdown()
        await resources.close()


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
