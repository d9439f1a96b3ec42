"""The in-process event hub: what the dashboard's live feed (GET /_emulator/ui/events) listens to.

The domain publishes a topic name when something a viewer would see changes: a job moved or was polled
(`jobs`), a request entered the journal (`requests`), the clock moved (`clock`), scenarios changed
(`scenarios`), a reset (`reset`). Publishing must cost nothing on the hot path: with nobody listening it is
one truth test; with listeners, each one's pending set gains the topic (coalesced: a set of at most a handful
of names, however fast events come) and its waiter is woken once. A listener reads the whole set at a time,
so a slow one never queues anything: it sees the latest changes as one notice. Listeners are capped.

No asyncio here: a listener's `wake` callable is whatever its reader waits on (an asyncio.Event's `set`).
"""

from __future__ import annotations

from collections.abc import Callable

JOBS = "jobs"
REQUESTS = "requests"
CLOCK = "clock"
SCENARIOS = "scenarios"
RESET = "reset"
TOPICS = (JOBS, REQUESTS, CLOCK, SCENARIOS, RESET)

DEFAULT_MAX_LISTENERS = 32


class TooManyListeners(Exception):
    """The hub already has its maximum of listeners."""


class Listener:
    """One reader of the hub: the topics published since it last looked."""

    __slots__ = ("_hub", "_wake", "closed", "pending")

    def __init__(self, hub: EventHub, wake: Callable[[], None]):
        self._hub = hub
        self._wake = wake
        self.pending: set[str] = set()
        self.closed = False

    def take(self) -> set[str]:
        """The topics published since the last take (and forget them)."""
        pending, self.pending = self.pending, set()
        return pending

    def notify(self, topic: str) -> None:
        if topic not in self.pending:
            self.pending.add(topic)
            self._wake()

    def close(self) -> None:
        """Stop listening (idempotent); the reader is woken to see `closed`."""
        if not self.closed:
            self.closed = True
            self._hub._listeners.remove(self)
            self._wake()


class EventHub:
    def __init__(self, max_listeners: int = DEFAULT_MAX_LISTENERS):
        self.max_listeners = max_listeners
        self._listeners: list[Listener] = []
        self.published = 0  # events published while someone listened (how busy the emulator is)

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    def publish(self, topic: str) -> None:
        if not self._listeners:  # the common case: no dashboard open
            return
        self.published += 1
        for listener in self._listeners:
            listener.notify(topic)

    def listen(self, wake: Callable[[], None]) -> Listener:
        """A new listener woken through `wake`; TooManyListeners past the cap."""
        if len(self._listeners) >= self.max_listeners:
            raise TooManyListeners(f"the live feed already has {self.max_listeners} listeners, its maximum")
        listener = Listener(self, wake)
        self._listeners.append(listener)
        return listener

    def close(self) -> None:
        """Every listener closed (the server is shutting down)."""
        for listener in list(self._listeners):
            listener.close()
