"""The API with the test process's cheap password hashing (`uvicorn
tests.support.cheap_hash_app:app`, tests.support.auth.CHEAP_HASHER): for an API process with a
database of its own, whose users (the first superuser too) it hashes itself."""

from backend import security
from backend.main import app
from tests.support.auth import CHEAP_HASHER

security._hasher = CHEAP_HASHER  # before the first request: the dummy hash is made lazily

__all__ = ["app"]
