"""A stop event on a simulated clock, for driving ``run_loop`` in tests without waiting."""

from __future__ import annotations


class SimStop:
    """A stop event on a simulated clock: ``wait`` moves the clock; set after ``n`` waits."""

    def __init__(self, clock: list[int], n: int) -> None:
        self.clock, self.n, self.waits = clock, n, []

    def is_set(self) -> bool:
        return len(self.waits) >= self.n

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.clock[0] += int(seconds * 1e9)
        return False
