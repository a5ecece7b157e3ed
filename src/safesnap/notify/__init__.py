"""Notifications (Apprise `[[notify]]`) and the dead-man's switch (`[healthcheck]` pings).

`dispatch(plan, event, notice)` is the entry point for any command that wants to tell the
operator something (the drill sends `drill_failure`); `run_hooks` wires a plan run to it.
Importing this package is light: apprise and requests load only when something is sent.
"""

from __future__ import annotations

from safesnap.notify.deliver import Delivery, dispatch, ping_healthcheck
from safesnap.notify.message import Notice, notice, notice_for_run

__all__ = ["Delivery", "Notice", "dispatch", "notice", "notice_for_run", "ping_healthcheck"]
