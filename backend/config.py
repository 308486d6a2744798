"""One Settings object, read from the environment and an optional `.env`; no I/O."""

from functools import lru_cache
from typing import Annotated, Any, Literal, Self

from pydantic import EmailStr, Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_JWT_SECRET = "dev-secret-change-me"  # noqa: S105 - the known default that production refuses


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    port: int = 8000

    database_url: str = "postgresql+asyncpg://postgres:postgres@127.0.0.1:5432/taskhub"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "taskhub"
    # Redis Sentinel: when REDIS_SENTINELS (comma-separated host:port) and the master's name
    # are set, every process finds the master through them (REDIS_URL then gives only the
    # database number and credentials). backend/services/redis/keys.py builds the client.
    redis_sentinels: Annotated[list[str], NoDecode] = []
    redis_sentinel_master: str | None = None
    redis_sentinel_password: SecretStr | None = None
    # Replicas that must acknowledge a fire's claim (WAIT) before the fire is sent, so a
    # failover cannot lose it; unset: 1 with Sentinel, else 0 (no WAIT).
    redis_claim_replicas: int | None = Field(default=None, ge=0)
    redis_claim_wait_ms: int = Field(default=1000, ge=1)
    # A worker retries a run's in-flight mark this long while Redis is unreachable (the
    # message is acked already: giving up loses the run); the scheduler its fires' claims,
    # sent marks and bookkeeping (giving up leaves a fire's next occurrence to reconcile).
    redis_outage_wait_seconds: float = Field(default=30, ge=0)
    rabbitmq_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    rabbitmq_queue: str = "taskhub"
    rabbitmq_exchange: str = "taskhub"
    # classic: message priorities honoured; quorum: replicated in a cluster (backend/broker.py).
    rabbitmq_queue_type: Literal["classic", "quorum"] = "classic"
    worker_prefetch: int = Field(default=10, ge=1)
    broker_send_timeout_seconds: float = Field(default=5.0, gt=0)

    # Runs: a run's deadline is start + timeout_seconds + lost_run_grace_seconds; past it,
    # the reaper (every reaper_interval_seconds in each worker) records it as lost.
    lost_run_grace_seconds: float = Field(default=30.0, ge=0)
    reaper_interval_seconds: float = Field(default=5.0, gt=0)
    reaper_lease_seconds: float = Field(default=60.0, gt=0)
    queued_run_ttl_seconds: int = Field(default=86400, ge=60)
    retry_delay_seconds: float = Field(default=5.0, ge=0)
    retry_max_delay_seconds: float = Field(default=300.0, ge=0)
    # How often a worker asks Redis whether its running runs were cancelled (one round trip
    # for all of them): a cancel reaches the task within this, well inside 2 seconds.
    cancel_poll_seconds: float = Field(default=0.5, gt=0, le=1.5)
    # taskiq's INFO line per run ("Executing task ... with ID ..."): off by default, as it
    # costs about a tenth of a run's worker CPU and each run's record and history say more.
    worker_log_runs: bool = False
    # Records: the worker writes run records in batches gathered for this long (one INSERT
    # each), and retries a failed write with backoff up to record_retry_max_seconds apart.
    record_flush_seconds: float = Field(default=0.02, ge=0)
    record_max_batch: int = Field(default=500, ge=1)
    record_max_pending: int = Field(default=5000, ge=1)
    record_retry_max_seconds: float = Field(default=5.0, gt=0)
    record_shutdown_seconds: float = Field(default=4.0, ge=0)
    result_max_bytes: int = Field(default=64 * 1024, ge=256)
    error_max_chars: int = Field(default=2000, ge=100)

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    access_token_minutes: int = Field(default=15, ge=1)
    refresh_token_days: int = Field(default=7, ge=1)
    # Brute-force lockout per username: this many failures within the window lock it.
    login_max_failures: int = Field(default=5, ge=1)
    login_window_minutes: int = Field(default=15, ge=1)

    first_superuser: EmailStr = "admin@example.com"
    first_superuser_password: SecretStr = SecretStr("changethis")

    misfire_grace_seconds: float = Field(default=60, ge=0)
    # A replica's claim on a fire it is sending; past it, unsent, another replica re-sends the
    # fire (its claimer died between claim and publish). Longer than a burst's slowest send.
    schedule_claim_lease_seconds: float = Field(default=10, gt=0, le=3600)
    schedule_lookahead_seconds: float = Field(default=5, gt=0)
    reconcile_interval_seconds: float = Field(default=60, gt=0)

    # Notifications: e-mail goes through this SMTP server (none: no e-mail channels); links in
    # messages point at PUBLIC_URL's console. The notifier runs in every worker process.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_from: str = "taskhub@localhost"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    public_url: str = "http://localhost:8000"
    notifier_interval_seconds: float = Field(default=1.0, gt=0)
    notification_timeout_seconds: float = Field(default=10.0, gt=0)
    notification_attempts: int = Field(default=3, ge=1, le=10)
    notification_retry_seconds: float = Field(default=15.0, ge=0)
    late_check_interval_seconds: float = Field(default=1.0, gt=0)

    # GET /metrics (Prometheus): served unless disabled; with a token, only to a bearer of it.
    metrics_enabled: bool = True
    metrics_token: SecretStr | None = None

    # Task types from other packages: comma-separated module paths the API and every worker
    # import at start (besides the `taskhub.tasks` entry points); see backend/tasks/__init__.py.
    task_modules: str = ""
    # Outgoing HTTP (http.request runs, alert webhooks) may reach these networks although they
    # are in a refused range (loopback, private, ...): comma-separated CIDRs (backend/ssrf.py).
    http_task_allowed_networks: Annotated[list[IPvAnyNetwork], NoDecode] = []

    cors_origins: list[str] = []
    max_body_bytes: int = 1024 * 1024

    @property
    def task_module_names(self) -> list[str]:
        return [name.strip() for name in self.task_modules.split(",") if name.strip()]

    @field_validator("http_task_allowed_networks", "redis_sentinels", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_half_a_sentinel_setup(self) -> Self:
        if bool(self.redis_sentinels) != bool(self.redis_sentinel_master):
            raise ValueError("REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together")
        for address in self.redis_sentinels:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"REDIS_SENTINELS: {address!r} is not host:port")
        return self

    @property
    def claim_replicas(self) -> int:
        """Replicas a fire's claim waits for: REDIS_CLAIM_REPLICAS, else 1 with Sentinel."""
        if self.redis_claim_replicas is not None:
            return self.redis_claim_replicas
        return 1 if self.redis_sentinels else 0

    @model_validator(mode="after")
    def _refuse_short_metrics_token(self) -> Self:
        if self.metrics_token is not None and len(self.metrics_token.get_secret_value()) < 16:
            raise ValueError("METRICS_TOKEN must be at least 16 characters (or unset)")
        return self

    @model_validator(mode="after")
    def _refuse_a_lease_outlasting_the_grace(self) -> Self:
        grace, lease = self.misfire_grace_seconds, self.schedule_claim_lease_seconds
        # With no grace at all a late fire is never sent, so there is nothing to recover.
        if grace and lease >= grace:
            raise ValueError(
                f"SCHEDULE_CLAIM_LEASE_SECONDS ({lease:g}) must be shorter than "
                f"MISFIRE_GRACE_SECONDS ({grace:g}): a fire whose scheduler died after claiming "
                "it is re-sent once the lease ends, and only within the grace"
            )
        return self

    @model_validator(mode="after")
    def _refuse_dev_secret_in_production(self) -> Self:
        if self.environment == "production":
            if self.jwt_secret.get_secret_value() == DEV_JWT_SECRET:
                raise ValueError("JWT_SECRET must be set in production (the default is public)")
            if len(self.jwt_secret.get_secret_value()) < 32:
                raise ValueError("JWT_SECRET must be at least 32 characters in production")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
