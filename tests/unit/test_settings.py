import pytest
from pydantic import ValidationError

from backend.config import DEV_JWT_SECRET, Settings


def test_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("ACCESS_TOKEN_MINUTES", "5")
    monkeypatch.setenv("CORS_ORIGINS", '["https://admin.example.com"]')
    settings = Settings()
    assert settings.port == 9123
    assert settings.access_token_minutes == 5
    assert settings.cors_origins == ["https://admin.example.com"]


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "CORS_ORIGINS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.port == 8000
    assert settings.cors_origins == []
    assert settings.refresh_token_days == 7


def test_production_refuses_development_secret() -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET must be set in production"):
        Settings(environment="production", jwt_secret=DEV_JWT_SECRET)


def test_production_refuses_short_secret() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(environment="production", jwt_secret="short")


def test_production_accepts_a_real_secret() -> None:
    settings = Settings(environment="production", jwt_secret="s" * 40)
    assert settings.environment == "production"


def test_rejects_bad_values() -> None:
    with pytest.raises(ValidationError):
        Settings(first_superuser="not-an-email")
    with pytest.raises(ValidationError):
        Settings(environment="staging")


@pytest.mark.parametrize("lease", [0, -1, 3601, "soon"])
def test_the_claim_lease_is_a_positive_duration(lease: object) -> None:
    with pytest.raises(ValidationError, match="schedule_claim_lease_seconds"):
        Settings(schedule_claim_lease_seconds=lease)


def test_the_claim_lease_must_end_within_the_misfire_grace() -> None:
    with pytest.raises(ValidationError, match="must be shorter than MISFIRE_GRACE_SECONDS"):
        Settings(misfire_grace_seconds=10, schedule_claim_lease_seconds=10)
    assert Settings(misfire_grace_seconds=10, schedule_claim_lease_seconds=9.5)
    assert Settings(misfire_grace_seconds=0)  # late fires are never sent: nothing to recover
