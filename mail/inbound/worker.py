"""The workers that poll: a round claims the due accounts (mail.inbound.leases), polls each with
its lease kept alive, and gives it back; `run_forever` repeats rounds every TICK_S (sooner after
Fetch now in this process); the web process's own poller is one such worker in a thread.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import update

from mail.context import MailContext
from mail.inbound.leases import CLAIM_LIMIT, HEARTBEAT_S, LEASE_S, Heartbeat, claim_due_accounts, new_worker_id, release
from mail.inbound.health import PollResult
from mail.inbound.sync import poll_account
from models import MailAccount, db

TICK_S = 2.0  # how often a worker looks for due accounts (Fetch now waits at most this long)
WAIT_STEP_S = 0.2
STOP_TIMEOUT_S = 30

log = logging.getLogger(__name__)
_wakeup = threading.Event()  # Fetch now in this process: look for due accounts at once


def request_fetch_now(account_id: int) -> None:
    """Ask for a poll of this account as soon as a worker is free (Fetch now); commits."""
    db.session.execute(update(MailAccount).where(MailAccount.id == account_id).values(poll_requested=True),
                       execution_options={"synchronize_session": False})
    db.session.commit()
    wake()


def wake() -> None:
    """Have this process's poller look for due accounts now rather than at its next tick."""
    _wakeup.set()


def poll_claimed(ctx: MailContext, account_id: int, worker_id: str, *, lease_s: float = LEASE_S,
                 heartbeat_s: float = HEARTBEAT_S, stop: threading.Event | None = None) -> PollResult | None:
    """Poll an account this worker has claimed, keeping its lease alive, then release it. None if
    the account is gone.

    The size limit is the context's max_message_bytes (MAIL_MAX_MESSAGE_BYTES). Needs an app context.
    """
    try:
        with Heartbeat(db.engine, account_id, worker_id, lease_s, heartbeat_s):
            return poll_account(ctx, account_id, lease_owner=worker_id, lease_s=lease_s, stop=stop,
                                max_message_bytes=ctx.max_message_bytes)
    except LookupError:
        return None
    finally:
        db.session.rollback()
        release(account_id, worker_id)


def run_once(ctx: MailContext, worker_id: str, *, limit: int = CLAIM_LIMIT, lease_s: float = LEASE_S,
             stop: threading.Event | None = None,
             on_result: Callable[[PollResult], None] | None = None) -> list[PollResult]:
    """Poll every account due now (claiming a few at a time), each at most once. Needs an app
    context. Raises SQLAlchemyError if the database cannot be reached."""
    results: list[PollResult] = []
    polled: set[int] = set()
    while stop is None or not stop.is_set():
        claimed = claim_due_accounts(worker_id, limit, lease_s)
        fresh = [account_id for account_id in claimed if account_id not in polled]
        for account_id in claimed:
            if account_id not in fresh:  # still due after this run polled it: leave it for later
                release(account_id, worker_id)
        if not fresh:
            break
        for position, account_id in enumerate(fresh):
            if stop is not None and stop.is_set():
                for unpolled in fresh[position:]:
                    release(unpolled, worker_id)
                break
            polled.add(account_id)
            result = poll_claimed(ctx, account_id, worker_id, lease_s=lease_s, stop=stop)
            if result is not None:
                results.append(result)
                if on_result is not None:
                    on_result(result)
    return results


def run_forever(app_context: Callable[[], AbstractContextManager], ctx: MailContext, stop: threading.Event, *,
                worker_id: str | None = None, tick_s: float = TICK_S, lease_s: float = LEASE_S,
                on_result: Callable[[PollResult], None] | None = None) -> None:
    """Poll due accounts until `stop` is set, each round inside a fresh `app_context()` (the
    app's, handed in: the domain does not reach for Flask); a failing round is logged and
    retried next tick."""
    worker_id = worker_id or new_worker_id()
    while not stop.is_set():
        try:
            with app_context():
                run_once(ctx, worker_id, lease_s=lease_s, stop=stop, on_result=on_result)
        except Exception:  # the database away for a moment must not end the worker
            log.exception("mail worker %s: a round failed; trying again in %s s", worker_id, tick_s)
        _pause(stop, tick_s)


def _pause(stop: threading.Event, tick_s: float) -> None:
    deadline = time.monotonic() + tick_s
    while not stop.is_set() and not _wakeup.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        stop.wait(min(remaining, WAIT_STEP_S))
    _wakeup.clear()


@dataclass
class Poller:
    """The web process's own poller (MAIL_POLLER=thread)."""

    thread: threading.Thread
    stop_event: threading.Event

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Ask the thread to stop after the batch it is on, and wait for it."""
        self.stop_event.set()
        self.thread.join(timeout_s)


def start_poller_thread(app_context: Callable[[], AbstractContextManager], ctx: MailContext, *,
                        tick_s: float = TICK_S) -> Poller:
    """Start a daemon thread polling due accounts in app contexts of its own."""
    stop_event = threading.Event()
    thread = threading.Thread(target=run_forever, args=(app_context, ctx, stop_event),
                              kwargs={"worker_id": new_worker_id("thread"), "tick_s": tick_s},
                              name="mail-poller", daemon=True)
    thread.start()
    return Poller(thread, stop_event)
