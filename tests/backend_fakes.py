"""Shared by the backend tests: the data view handed to a backend, with a tripwire on the test split, and a
fake model that records its calls in flight."""

import threading
from collections import Counter

from promptomatix.lm.fake import FakeLM


class GuardedData:
    """Backend view with a tripwire: touching `test` fails the test."""

    def __init__(self, train, valid):
        self.train, self.valid = train, valid

    @property
    def test(self):
        raise AssertionError("a backend read the test split")


class InFlight(FakeLM):
    """A fake model with latency that records the most calls it had in flight, per stage of the run (the tests
    set `stage`), for the engine tests of both backends."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.now, self.stage = 0, "start"
        self.peak: Counter[str] = Counter()
        self.gate = threading.Lock()

    def complete(self, messages, **kw):
        with self.gate:
            self.now += 1
            self.peak[self.stage] = max(self.peak[self.stage], self.now)
        try:
            return super().complete(messages, **kw)
        finally:
            with self.gate:
                self.now -= 1
