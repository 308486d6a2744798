"""The API with the tests' `test.call_sink` task type registered (`uvicorn
tests.support.sink_task_app:app`), so an API process accepts configs of that type."""

import tests.support.sink_task  # noqa: F401 - registers the type before the app lists them
from backend.main import app

__all__ = ["app"]
