"""Group commit: socket commands of a burst share one transaction, every ack still after its commit.

A hall checking in at once sends hundreds of `checkin` commands within a second. Alone, each is a
transaction of its own (lock the meeting row, write, audit entry, commit: a disk flush on SQLite
and on PostgreSQL), so they queue behind one another for the meeting's lock and for the disk. A
command named in `GROUPED` instead joins a queue; one of the waiting handlers (the leader) sleeps
`WINDOW_S` for more to arrive, then runs everything queued in ONE transaction, each command in a
savepoint of its own, and commits once:

* each command goes through the same steps as alone (`commands.apply`: resolve, authorize, the
  ended-meeting rule, the domain function, its own audit entry), in arrival order;
* a command that is refused (or fails) rolls back to its savepoint: its error is its own answer,
  the others go on;
* every answer and every broadcast (`commands.publish`) is released only after the commit;
* should the transaction itself fail (a PostgreSQL deadlock is tried again first), each command
  is run again alone through the ordinary pipeline, so none is lost and none is answered twice.

The leader role passes from handler to handler (no resident thread). `MEETING_GROUP_COMMIT=0`
turns it off (every command alone), for before/after benchmarks.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: Command names whose socket calls are committed in groups (domains add theirs in `init_app`).
GROUPED: set[str] = set()
#: How long a leader waits for more commands before it writes (seconds).
WINDOW_S = 0.002
#: At most this many commands per transaction.
MAX_GROUP = 256
#: A handler gives up waiting for its answer after this long; the command may still commit (every
#: grouped command is idempotent: sending it again is safe).
WAIT_S = 60.0


def enable(*names: str) -> None:
    GROUPED.update(names)


def enabled() -> bool:
    return os.environ.get("MEETING_GROUP_COMMIT", "1") != "0"


@dataclass
class Item:
    cmd: Any
    actor: Any
    payload: Any
    params: dict[str, Any]
    sid: str | None
    done: threading.Event = field(default_factory=threading.Event)
    finished: bool = False
    result: Any = None
    error: BaseException | None = None
    ctx: Any = None
    lead: bool = False


class Group:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Item] = []
        self._busy = False
        #: Statistics for benchmarks and tests: transactions written and commands in them.
        self.groups = 0
        self.commands = 0
        self.largest = 0

    def run(self, cmd: Any, actor: Any, payload: Any, params: dict[str, Any], sid: str | None) -> Any:
        """Queue one command and wait until its group has committed; its result, or raise its error."""
        from .errors import Conflict

        item = Item(cmd, actor, payload, params, sid)
        with self._lock:
            self._pending.append(item)
            lead = not self._busy
            self._busy = True
        if lead:
            self._lead()
        deadline = time.monotonic() + WAIT_S
        while not item.finished:
            left = deadline - time.monotonic()
            if left <= 0:
                with self._lock:
                    if item.lead:  # handed the leader role at the last moment: others wait on it
                        left = 0.0
                    elif item in self._pending:  # never taken: nothing of it was written
                        self._pending.remove(item)
                        raise Conflict("the server is busy; send it again", code="timeout")
                    else:
                        raise Conflict("the change was not confirmed in time; send it again", code="timeout")
            if not item.lead:
                item.done.wait(max(left, 0.0))
            if not item.finished and item.lead:
                item.lead = False
                item.done.clear()
                self._lead()
        if item.error is not None:
            raise item.error
        return item.result

    def _lead(self) -> None:
        from ..extensions import socketio

        if WINDOW_S:
            socketio.sleep(WINDOW_S)
        with self._lock:
            batch, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
        try:
            if batch:
                self._write(batch)
        finally:
            for it in batch:  # (only if writing itself broke) nobody is left without an answer
                if not it.finished:
                    from .errors import Conflict

                    it.error = Conflict("the change could not be recorded; send it again", code="timeout")
                    it.finished = True
            with self._lock:
                nxt = self._pending[0] if self._pending else None
                if nxt is None:
                    self._busy = False
                else:
                    nxt.lead = True
            for it in batch:
                it.done.set()
            if nxt is not None:
                nxt.done.set()  # hand the leader role on to a waiting handler

    def _write(self, batch: list[Item]) -> None:
        from sqlalchemy.exc import DBAPIError

        from . import commands, db

        for attempt in range(commands.RETRIES + 1):
            try:
                with db.transaction() as s:
                    for it in batch:
                        it.ctx = it.result = it.error = None
                        sp = s.begin_nested()
                        try:
                            it.ctx, it.result = commands.apply(
                                s, it.cmd, it.actor, it.payload, it.params, sid=it.sid
                            )
                            sp.commit()
                        except DBAPIError:
                            raise  # the transaction as a whole: tried again, or each alone
                        except Exception as e:  # this command's own refusal or failure
                            sp.rollback()
                            it.error = e
                break
            except DBAPIError as e:
                if attempt < commands.RETRIES and commands.retryable(e):
                    log.warning(
                        "a group of %d commands: %s; writing it again", len(batch), type(e.orig).__name__
                    )
                    time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))  # green threads: yields
                    continue
                log.warning("a group of %d commands failed (%s); running each alone", len(batch), e)
                return self._alone(batch)
            except Exception:
                log.exception("a group of %d commands failed; running each alone", len(batch))
                return self._alone(batch)
        self.groups += 1
        self.commands += len(batch)
        self.largest = max(self.largest, len(batch))
        for it in batch:  # committed: answers and broadcasts, in arrival order
            if it.error is None:
                commands.publish(it.ctx)
            it.ctx = None
            it.finished = True

    def _alone(self, batch: list[Item]) -> None:
        from sqlalchemy.exc import DataError

        from . import commands
        from .errors import Invalid

        for it in batch:
            it.ctx = it.result = it.error = None
            try:
                it.result = commands._execute(it.cmd, it.actor, it.payload, it.params, None, it.sid)
            except (OverflowError, DataError) as e:  # as `commands.execute` answers it
                it.error = Invalid("a value in the request is out of range", code="out_of_range")
                it.error.__cause__ = e
            except Exception as e:
                it.error = e
            it.finished = True


#: The process's group (one queue for every grouped command of every meeting).
current = Group()


def run(cmd: Any, actor: Any, payload: Any, params: dict[str, Any], sid: str | None) -> Any:
    return current.run(cmd, actor, payload, params, sid)
