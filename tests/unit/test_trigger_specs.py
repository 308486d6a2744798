"""Schedule specs: validation and next fire times (no waiting)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from backend.triggers.specs import CronSpec, DateSpec, IntervalSpec, ManualSpec, parse_schedule

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


@pytest.mark.parametrize(
    "config",
    [
        {"cron_expression": "61 * * * *"},
        {"cron_expression": "* * *"},
        {"cron_expression": "0 0 * * * *"},
        {"cron_expression": "@every"},
        {"minute": "99"},
        {},
        {"cron_expression": "* * * * *", "hour": "1"},
        {"cron_expression": "* * * * *", "timezone": "Mars/Olympus"},
        {"cron_expression": "* * * * *", "color": "red"},
    ],
)
def test_cron_rejects(config: dict) -> None:
    with pytest.raises(ValidationError):
        parse_schedule("cron", config)


@pytest.mark.parametrize(
    ("config", "expression"),
    [
        ({"cron_expression": "*/5  * * * *"}, "*/5 * * * *"),
        ({"cron_expression": "@daily"}, "0 0 * * *"),
        ({"cron_expression": "@Weekly"}, "0 0 * * 0"),
        ({"minute": "30", "hour": "2"}, "30 2 * * *"),
        ({"day_of_week": "mon-fri", "minute": "0", "hour": "9"}, "0 9 * * mon-fri"),
    ],
)
def test_cron_accepts(config: dict, expression: str) -> None:
    spec = parse_schedule("cron", config)
    assert isinstance(spec, CronSpec)
    assert spec.expression == expression


def test_cron_next_in_its_time_zone() -> None:
    spec = CronSpec(cron_expression="0 9 * * *", timezone="Europe/Berlin")
    after = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert spec.next_fire_after(after) == datetime(2026, 7, 2, 7, 0, tzinfo=UTC)


def test_cron_next_is_strictly_after() -> None:
    spec = CronSpec(cron_expression="* * * * *")
    on_boundary = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert spec.next_fire_after(on_boundary) == on_boundary + timedelta(minutes=1)


def test_dst_spring_forward_skipped_time_fires_at_first_valid_time() -> None:
    spec = CronSpec(cron_expression="30 2 * * *", timezone="Europe/Berlin")
    fires = [spec.next_fire_after(berlin(2026, 3, 28, 12, 0))]
    fires.append(spec.next_fire_after(fires[0]))
    assert [f.astimezone(BERLIN).isoformat() for f in fires] == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]


def test_dst_autumn_repeated_hour_fixed_time_fires_once() -> None:
    spec = CronSpec(cron_expression="30 2 * * *", timezone="Europe/Berlin")
    first = spec.next_fire_after(berlin(2026, 10, 24, 12, 0))
    second = spec.next_fire_after(first)
    assert first.astimezone(BERLIN).isoformat() == "2026-10-25T02:30:00+02:00"
    assert second.astimezone(BERLIN).isoformat() == "2026-10-26T02:30:00+01:00"


def test_dst_autumn_wildcard_hour_fires_in_both_passes() -> None:
    spec = CronSpec(cron_expression="30 * * * *", timezone="Europe/Berlin")
    moment = berlin(2026, 10, 25, 1, 45)
    fires = []
    for _ in range(3):
        moment = spec.next_fire_after(moment)
        fires.append(moment)
    assert [f - fires[0] for f in fires] == [timedelta(0), timedelta(hours=1), timedelta(hours=2)]


def test_interval_is_anchored_on_its_grid() -> None:
    spec = IntervalSpec(seconds=10)
    anchor = datetime(2026, 1, 1, tzinfo=UTC)
    assert spec.next_fire_after(anchor, anchor=anchor) == anchor + timedelta(seconds=10)
    later = anchor + timedelta(seconds=25)
    assert spec.next_fire_after(later, anchor=anchor) == anchor + timedelta(seconds=30)
    exact = anchor + timedelta(seconds=30)
    assert spec.next_fire_after(exact, anchor=anchor) == anchor + timedelta(seconds=40)


@pytest.mark.parametrize("config", [{"seconds": 0}, {}, {"minutes": -1}, {"weeks": 1}])
def test_interval_rejects(config: dict) -> None:
    with pytest.raises(ValidationError):
        parse_schedule("interval", config)


def test_interval_sums_its_parts() -> None:
    spec = parse_schedule("interval", {"hours": 1, "minutes": 30})
    assert isinstance(spec, IntervalSpec)
    assert spec.every == timedelta(minutes=90)


def test_date_naive_is_utc_and_fires_once() -> None:
    spec = parse_schedule("date", {"run_date": "2030-01-01T02:00:00"})
    assert isinstance(spec, DateSpec)
    assert spec.run_at == datetime(2030, 1, 1, 2, tzinfo=UTC)
    assert spec.next_fire_after(datetime(2029, 1, 1, tzinfo=UTC)) == spec.run_at
    assert spec.next_fire_after(spec.run_at) is None


def test_date_with_offset() -> None:
    spec = parse_schedule("date", {"run_date": "2030-01-01T02:00:00+01:00"})
    assert isinstance(spec, DateSpec)
    assert spec.run_at == datetime(2030, 1, 1, 1, tzinfo=UTC)


def test_manual_takes_nothing() -> None:
    assert isinstance(parse_schedule("manual", {}), ManualSpec)
    with pytest.raises(ValidationError):
        parse_schedule("manual", {"seconds": 1})
    assert ManualSpec().next_fire_after(datetime.now(UTC)) is None


def test_unknown_scheduler_type() -> None:
    with pytest.raises(KeyError):
        parse_schedule("hourly", {})


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # 02:15 in the second pass (+01:00) of the repeated hour: 02:30+02:00 is already past.
        (datetime(2026, 10, 25, 2, 15, fold=1, tzinfo=BERLIN), "2026-10-26T02:30:00+01:00"),
        (datetime(2026, 10, 25, 2, 45, fold=1, tzinfo=BERLIN), "2026-10-26T02:30:00+01:00"),
        # The first pass (+02:00) still has its 02:30 ahead.
        (datetime(2026, 10, 25, 2, 15, fold=0, tzinfo=BERLIN), "2026-10-25T02:30:00+02:00"),
    ],
)
def test_dst_autumn_after_inside_the_repeated_hour_is_strictly_after(
    after: datetime, expected: str
) -> None:
    spec = CronSpec(cron_expression="30 2 * * *", timezone="Europe/Berlin")
    fire = spec.next_fire_after(after)
    assert fire > after
    assert fire.astimezone(BERLIN).isoformat() == expected


def test_dst_autumn_wildcard_hour_from_inside_the_second_pass() -> None:
    spec = CronSpec(cron_expression="30 * * * *", timezone="Europe/Berlin")
    after = datetime(2026, 10, 25, 2, 15, fold=1, tzinfo=BERLIN)  # 01:15 UTC
    fire = spec.next_fire_after(after)
    assert fire == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30+01:00, the second pass
    assert spec.next_fire_after(fire) == datetime(2026, 10, 25, 2, 30, tzinfo=UTC)
