"""Shared by the backend tests: the data view handed to a backend, with a tripwire on the test split."""


class GuardedData:
    """Backend view with a tripwire: touching `test` fails the test."""

    def __init__(self, train, valid):
        self.train, self.valid = train, valid

    @property
    def test(self):
        raise AssertionError("a backend read the test split")
