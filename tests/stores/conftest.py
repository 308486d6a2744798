import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import make_url

from tests.support import infra


@pytest.fixture
async def empty_database(test_database: str) -> AsyncIterator[str]:
    """A database of the test's own, with no table: the test migrates it as it needs."""
    url = make_url(test_database)
    url = url.set(database=f"{url.database}_m{uuid.uuid4().hex[:6]}")
    rendered = url.render_as_string(hide_password=False)
    await infra.create_database(rendered)
    yield rendered
    await infra.drop_database(rendered)
