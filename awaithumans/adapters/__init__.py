"""Integrations with durable-execution frameworks, one subpackage per framework.

Each adapter has the same shape:

* ``await_human(...)``: the coroutine that asks a person from inside a run (a Temporal
  workflow, a LangGraph node, a Prefect flow) and parks the run until the answer comes;
  ``await_human_sync`` its blocking twin where the engine runs sync code (LangGraph, Prefect).
  They take the core's parameters (:class:`awaithumans.core.Ask`) plus the engine's own.
* ``relay_app(engine, webhook_secret)``: the ASGI app that takes the server's signed
  webhook and hands the outcome to the waiting run; ``resume_from_event(engine, event)``
  does that for one event and returns a :class:`ResumeResult`. Events for other runs raise
  :class:`~awaithumans.NotOurEventError`, runs not ready yet
  :class:`~awaithumans.RetryLaterError`.

Importing this package loads no framework; each adapter pulls in its own and is imported
explicitly, e.g. ``awaithumans.adapters.temporal`` (a missing framework raises
:class:`~awaithumans.MissingExtraError` naming the extra to install).
"""

from awaithumans.adapters._relay import Resumed, ResumeResult

__all__ = ["ResumeResult", "Resumed"]
