"""Notifications to people, one folder per channel, each behind ``deliver(job) -> Outcome``.

A channel is a :class:`~awaithumans.server.services.delivery.Handler` named after its route
prefix (``slack`` for ``slack:#approvals``). The outbox gives it every job of a task whose
``notify=`` names it: ``task.created`` to ask, then the task's ending to close the message
(the job carries the receipts of what was sent before on that route). Its ``Outcome``
says whether a person got it (``reached_human``) and what to keep as a receipt.

A channel that takes answers back where people are (buttons, modals, links, replies)
also implements :class:`InboundChannel`: its routes are mounted under
``/api/channels/<name>/``, and they act only through the answer path
(``services/answers.py``), as an authenticated principal on the channel's own
``lifecycle.Channel``. Channels are built from ``Settings`` by :func:`notify_channels`.
"""

from __future__ import annotations

from awaithumans.server.notify.base import InboundChannel, mount_inbound, notify_channels

__all__ = ["InboundChannel", "mount_inbound", "notify_channels"]
