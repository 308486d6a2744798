"""docs/prometheus-alerts.yml names only metric families Taskhub serves."""

import re
from pathlib import Path

import yaml

from backend import metrics

RULES = Path(__file__).resolve().parents[2] / "docs" / "prometheus-alerts.yml"
SERVED = {
    "taskhub_runs_finished_total", "taskhub_schedule_lag_seconds_bucket",
    "taskhub_schedule_fires_sent_total", "taskhub_runs_in_flight", "taskhub_notifications_total",
}  # fmt: skip


def test_the_rules_parse_and_use_served_metrics() -> None:
    document = yaml.safe_load(RULES.read_text())
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} == {
        "TaskhubRunFailureRate", "TaskhubSchedulerLagHigh", "TaskhubNoSchedulerSending",
        "TaskhubRunsInFlightStuck", "TaskhubNotificationsFailing",
    }  # fmt: skip
    used = {name for rule in rules for name in re.findall(r"taskhub_\w+", rule["expr"])}
    assert used <= SERVED
    assert metrics.notifications_sent._name == "taskhub_notifications"
