"""Pydantic request and response models, one module per API area, apart from the ORM models."""
