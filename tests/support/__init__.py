"""Helpers for the project's own test suite (not part of the published package).

:mod:`tests.support.postgres`: a throwaway PostgreSQL cluster (:class:`PostgresServer`).
:mod:`tests.support.browser`: a real ``awaithumans dev`` (:class:`DevServer`) and the
system Chromium driven by Playwright.
"""
