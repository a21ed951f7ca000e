"""Integrations with durable-execution frameworks, one subpackage per framework.

Nothing here is imported by ``import awaithumans``: each adapter pulls in its framework
(``temporalio``, ...) and is imported explicitly, e.g. ``awaithumans.adapters.temporal``.
"""
