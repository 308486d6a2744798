"""The repeating-schedule options applied to fire times: window, exclusions, jitter."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from pydantic import ValidationError

from backend.triggers.fires import Fire, Timing, occurrences, upcoming
from backend.triggers.specs import parse_schedule

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def timing(scheduler_type: str, seed: int = 7, **config) -> Timing:
    return Timing(parse_schedule(scheduler_type, config), seed=seed)


def ats(fires: list[Fire]) -> list[datetime]:
    return [fire.at for fire in fires]


def test_interval_with_start_at_is_anchored_there_and_fires_at_start_at() -> None:
    start_at = T0 + timedelta(hours=1, seconds=7)
    fires = upcoming(
        timing("interval", minutes=30, start_at=start_at.isoformat()),
        after=T0, anchor=T0, count=3,
    )  # fmt: skip
    assert ats(fires) == [start_at + timedelta(minutes=30 * k) for k in range(3)]


def test_interval_with_a_past_start_at_keeps_its_grid() -> None:
    start_at = T0 - timedelta(minutes=50)
    fires = upcoming(
        timing("interval", minutes=30, start_at=start_at.isoformat()),
        after=T0, anchor=T0, count=2,
    )  # fmt: skip
    assert ats(fires) == [T0 + timedelta(minutes=10), T0 + timedelta(minutes=40)]


def test_cron_fires_nothing_before_start_at_nor_after_end_at() -> None:
    window = timing(
        "cron", cron_expression="0 * * * *",
        start_at="2026-12-01T12:30:00", end_at="2026-12-01T15:00:00",
    )  # fmt: skip
    fires = upcoming(window, after=T0, anchor=T0, count=10)
    assert [fire.at.hour for fire in fires] == [13, 14, 15]
    assert window.next_fire(fires[-1].at, anchor=T0) is None


def test_cron_never_fires_a_nominal_time_at_or_before_its_anchor() -> None:
    hourly = timing("cron", cron_expression="0 * * * *", jitter_seconds=3599)
    fires = upcoming(
        hourly, after=T0 + timedelta(minutes=5), anchor=T0 + timedelta(minutes=5), count=2
    )
    assert [fire.nominal for fire in fires] == [T0 + timedelta(hours=1), T0 + timedelta(hours=2)]


def test_excluded_days_and_ranges_are_skipped_in_the_schedules_zone() -> None:
    daily = timing(
        "cron", cron_expression="30 0 * * *", timezone="Europe/Berlin",
        exclude=["2026-12-03", {"from": "2026-12-05", "to": "2026-12-06"}],
    )  # fmt: skip
    fires = upcoming(daily, after=T0, anchor=T0, count=4)
    # 00:30 in Berlin is 23:30 UTC the day before: the zone decides which day is excluded.
    local_days = [fire.at.astimezone(daily.options.zone).day for fire in fires]  # type: ignore[union-attr]
    assert local_days == [2, 4, 7, 8]
    skipped = daily.excluded_between(T0, fires[-1].at, anchor=T0)
    assert [moment.astimezone(daily.options.zone).day for moment in skipped] == [3, 5, 6]  # type: ignore[union-attr]


def test_a_long_exclusion_is_jumped_over_not_walked() -> None:
    every_second = timing(
        "interval", seconds=1, exclude=[{"from": "2026-12-01", "to": "2027-12-01"}]
    )
    [fire] = upcoming(every_second, after=T0, anchor=T0, count=1)
    assert fire.at == datetime(2027, 12, 2, tzinfo=UTC)


def test_jitter_is_the_same_for_every_replica_and_differs_between_configs() -> None:
    config = {"cron_expression": "*/5 * * * *", "jitter_seconds": 120}
    first = upcoming(timing("cron", seed=1, **config), after=T0, anchor=T0, count=20)
    again = upcoming(timing("cron", seed=1, **config), after=T0, anchor=T0, count=20)
    other = upcoming(timing("cron", seed=2, **config), after=T0, anchor=T0, count=20)
    assert first == again
    assert ats(first) != ats(other)
    for fire in first:
        offset = fire.at - fire.nominal
        assert timedelta() <= offset < timedelta(seconds=120)
        assert fire.at.microsecond == 0  # whole seconds: the scheduler ticks on them
    assert len({fire.at - fire.nominal for fire in first}) > 5


def test_jitter_never_reorders_fires_and_the_next_is_found_from_a_fire_time() -> None:
    # Jitter larger than the gap between fires is cut to the gap.
    jittered = timing("cron", cron_expression="* * * * *", jitter_seconds=3600)
    fires = upcoming(jittered, after=T0, anchor=T0, count=50)
    assert ats(fires) == sorted(ats(fires))
    assert [f.nominal for f in fires] == [T0 + timedelta(minutes=k) for k in range(1, 51)]
    for earlier, later in pairwise(fires):
        assert earlier.at < later.nominal
        assert jittered.next_fire(earlier.at, anchor=T0) == later


def test_a_jittered_fire_still_ahead_is_found_after_its_nominal_time() -> None:
    jittered = timing("interval", minutes=10, jitter_seconds=500)
    [first] = upcoming(jittered, after=T0, anchor=T0, count=1)
    if first.at > first.nominal:  # the seed gives it an offset; look between the two times
        assert jittered.next_fire(first.nominal, anchor=T0) == first


def test_jitter_keeps_fires_inside_the_window() -> None:
    end_at = T0 + timedelta(minutes=30, seconds=3)
    jittered = timing("interval", minutes=10, jitter_seconds=599, end_at=end_at.isoformat())
    fires = upcoming(jittered, after=T0, anchor=T0, count=10)
    assert [fire.nominal for fire in fires][-1] == T0 + timedelta(minutes=30)
    assert all(fire.at <= end_at for fire in fires)


def test_occurrences_are_the_fires_sent_within_a_span() -> None:
    jittered = timing("interval", minutes=1, jitter_seconds=50)
    fires = upcoming(jittered, after=T0, anchor=T0, count=5)
    assert (
        occurrences(jittered, since=fires[1].at, until=fires[3].at, anchor=T0, limit=10)
        == fires[1:4]
    )


@pytest.mark.parametrize(
    ("scheduler_type", "config", "where", "message"),
    [
        (
            "interval",
            {"seconds": 10, "jitter_seconds": 10},
            ("jitter_seconds",),
            "less than the interval",
        ),
        (
            "cron",
            {"minute": "0", "jitter_seconds": 3601},
            ("jitter_seconds",),
            "less than or equal to 3600",
        ),
        (
            "cron",
            {"minute": "0", "jitter_seconds": -1},
            ("jitter_seconds",),
            "greater than or equal to 0",
        ),
        ("interval", {"seconds": 10, "max_runs": 0}, ("max_runs",), "greater than or equal to 1"),
        ("interval", {"seconds": 10, "max_runs": 1_000_001}, ("max_runs",), "less than or equal"),
        (
            "interval",
            {"seconds": 10, "start_at": "2026-12-02T00:00:00", "end_at": "2026-12-02T00:00:00"},
            ("end_at",),
            "end_at must be after start_at",
        ),
        ("cron", {"minute": "0", "exclude": ["12/25/2026"]}, ("exclude", 0, "day"), "not a date"),
        (
            "cron",
            {"minute": "0", "exclude": ["2026-02-30"]},
            ("exclude", 0, "day"),
            "not a valid date",
        ),
        (
            "cron",
            {"minute": "0", "exclude": [{"from": "2026-12-31", "to": "2026-12-24"}]},
            ("exclude", 0, "range"),
            "'from' (2026-12-31) is after 'to' (2026-12-24)",
        ),
        (
            "date",
            {"run_date": "2030-01-01T00:00:00", "start_at": "2029-01-01"},
            (),
            "only cron and interval",
        ),
        ("manual", {"end_at": "2029-01-01"}, (), "only cron and interval"),
    ],
)
def test_bad_options_are_refused_where_they_are(
    scheduler_type: str, config: dict, where: tuple, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_schedule(scheduler_type, config)
    [error] = caught.value.errors()
    assert error["loc"] == where
    assert message in error["msg"]
