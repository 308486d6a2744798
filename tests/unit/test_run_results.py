from datetime import UTC, datetime

from backend.worker.results import cap_result, describe_error


def test_error_message_is_type_and_message_truncated() -> None:
    assert describe_error(ValueError("bad value"), max_chars=100) == "ValueError: bad value"
    assert describe_error(TimeoutError(), max_chars=100) == "TimeoutError"
    long = describe_error(RuntimeError("x" * 500), max_chars=100)
    assert len(long) == 100
    assert long.startswith("RuntimeError: xxx")
    assert long.endswith("…")


def test_result_is_json_and_size_capped() -> None:
    moment = datetime(2030, 1, 1, tzinfo=UTC)
    assert cap_result({"at": moment, "n": 1}, max_bytes=1000) == {
        "at": "2030-01-01 00:00:00+00:00",
        "n": 1,
    }
    capped = cap_result({"blob": "y" * 5000}, max_bytes=300)
    assert capped["truncated"] is True
    assert capped["size_bytes"] > 5000
    assert len(capped["preview"]) == 300
