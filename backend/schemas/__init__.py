"""Pydantic request and response models, one module per area (apart from the ORM models)."""
