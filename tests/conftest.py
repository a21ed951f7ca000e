"""Shared fixtures: real PostgreSQL, server processes, the in-process app, Temporal, Prefect."""

pytest_plugins = [
    "tests._pg_fixtures",
    "tests._server_fixtures",
    "tests._app_fixtures",
    "tests._temporal_fixtures",
    "tests._prefect_fixtures",
]
