"""Schedules in words, as the API returns them in `schedule_description`."""

import pytest

from backend.triggers.words import describe


@pytest.mark.parametrize(
    ("scheduler_type", "schedule_config", "words"),
    [
        ("cron", {"cron_expression": "0 2 * * *", "timezone": "Europe/Berlin"},
         "At 02:00, every day (Europe/Berlin)"),
        ("cron", {"cron_expression": "*/5 * * * *"}, "Every 5 minutes (UTC)"),
        ("cron", {"cron_expression": "@daily"}, "At 00:00, every day (UTC)"),
        ("cron", {"minute": "30", "hour": "2", "day_of_week": "1-5"},
         "At 02:30, Monday through Friday (UTC)"),
        ("cron", {"cron_expression": "15 10 * * 0"}, "At 10:15, only on Sunday (UTC)"),
        ("interval", {"hours": 1, "minutes": 30}, "Every 1 hour 30 minutes"),
        ("interval", {"seconds": 90}, "Every 1 minute 30 seconds"),
        ("interval", {"days": 2}, "Every 2 days"),
        ("date", {"run_date": "2030-01-01T02:00:00+01:00"}, "Once, at 2030-01-01 01:00:00 UTC"),
        ("manual", {}, "Manual: only when run by hand"),
        ("cron", {"cron_expression": "not cron"}, "Invalid cron schedule"),
        ("interval", {"minutes": 5, "max_runs": 1, "jitter_seconds": 30,
                      "start_at": "2026-12-24T10:00:00", "exclude": ["2026-12-25"]},
         "Every 5 minutes, from 2026-12-24 10:00 UTC, at most 1 run, up to 30 s late (jitter), "
         "except 2026-12-25"),
        ("cron", {"cron_expression": "0 9 * * *", "end_at": "2027-01-01T00:00:00",
                  "exclude": [{"from": "2026-12-24", "to": "2027-01-01"}]},
         "At 09:00, every day (UTC), until 2027-01-01 00:00 UTC, except 2026-12-24 to 2027-01-01"),
    ],
)  # fmt: skip
def test_describe(scheduler_type: str, schedule_config: dict, words: str) -> None:
    assert describe(scheduler_type, schedule_config) == words
