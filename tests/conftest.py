"""Shared fixtures: a real PostgreSQL, and real server processes for end-to-end tests."""

pytest_plugins = ["tests._pg_fixtures", "tests._server_fixtures", "tests._app_fixtures"]
