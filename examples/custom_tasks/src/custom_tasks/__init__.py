"""Example task types from outside Taskhub: `example.report` (custom_tasks.reports)."""
