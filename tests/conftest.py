"""Shared fixtures: a real PostgreSQL, real server processes, the in-process app, Temporal."""

pytest_plugins = [
    "tests._pg_fixtures",
    "tests._server_fixtures",
    "tests._app_fixtures",
    "tests._temporal_fixtures",
]
