"""Taskhub: scheduled background tasks on FastAPI, taskiq, PostgreSQL and Redis."""
