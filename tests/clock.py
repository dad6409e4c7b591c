"""A clock tests set by hand: pass it where code takes `clock: Callable[[], float]`."""


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
