"""The event hub the dashboard's live feed listens to: free without listeners, coalesced, capped."""

from __future__ import annotations

import pytest

from emulator.events import CLOCK, JOBS, REQUESTS, EventHub, TooManyListeners


def test_publishing_without_listeners_does_nothing() -> None:
    hub = EventHub()
    hub.publish(JOBS)
    assert hub.published == 0


def test_a_listener_sees_each_topic_once_however_often_it_is_published() -> None:
    hub = EventHub()
    wakes: list[int] = []
    listener = hub.listen(lambda: wakes.append(1))
    for _ in range(1000):
        hub.publish(REQUESTS)
    hub.publish(JOBS)
    assert listener.take() == {REQUESTS, JOBS}
    assert len(wakes) == 2  # woken once per new topic, not per event: a slow reader queues nothing
    assert listener.take() == set()
    hub.publish(CLOCK)
    assert listener.take() == {CLOCK}


def test_listeners_are_capped_and_closing_one_frees_its_place() -> None:
    hub = EventHub(max_listeners=2)
    first = hub.listen(lambda: None)
    hub.listen(lambda: None)
    with pytest.raises(TooManyListeners):
        hub.listen(lambda: None)
    first.close()
    first.close()  # idempotent
    hub.listen(lambda: None)
    assert hub.listeners == 2


def test_closing_the_hub_wakes_and_closes_every_listener() -> None:
    hub = EventHub()
    woken: list[str] = []
    listeners = [hub.listen(lambda n=n: woken.append(str(n))) for n in range(3)]
    hub.close()
    assert all(listener.closed for listener in listeners)
    assert sorted(woken) == ["0", "1", "2"]
    assert hub.listeners == 0
