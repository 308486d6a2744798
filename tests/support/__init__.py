"""Helpers shared by the tests: processes, clients, factories, polling."""
