"""The training progress bar of :meth:`webml.train.Trainer.fit`."""

from __future__ import annotations

import time
from typing import IO

__all__ = ["ProgressBar"]


class ProgressBar:
    """A one-line text progress bar: redrawn in place on a terminal, one line per epoch otherwise."""

    width = 24
    interval = 0.1  # seconds between redraws
    loss_interval = 1.0  # seconds between reads of the running loss (terminals only)

    def __init__(self, stream: IO[str], epochs: int, steps: int, metric: str | None) -> None:
        self.stream = stream
        self.epochs = epochs
        self.steps = steps
        self.metric = metric
        isatty = getattr(stream, "isatty", None)
        self.live = bool(isatty and isatty())
        self.last_draw = 0.0
        self.last_loss_read = 0.0
        self.loss: float | None = None

    def _line(self, epoch: int, step: int, loss: float | None, value: float | None, seconds: float | None) -> str:
        filled = self.width * step // self.steps
        bar = "=" * filled + (">" if filled < self.width else "") + " " * (self.width - filled - 1)
        digits = len(str(self.epochs))
        parts = [f"epoch {epoch + 1:>{digits}}/{self.epochs}", f"[{bar[: self.width]}]", f"{step}/{self.steps}"]
        if loss is not None:
            parts.append(f"loss {loss:.4f}")
        if value is not None:
            parts.append(f"{self.metric} {value:.4f}")
        if seconds is not None:
            parts.append(f"{seconds:.2f}s")
        return " ".join(parts)

    def wants_loss(self) -> bool:
        # Reading the running loss is a host round trip: only on a terminal, at most once a second.
        now = time.perf_counter()
        if self.live and now - self.last_loss_read >= self.loss_interval:
            self.last_loss_read = now
            return True
        return False

    def update(self, epoch: int, step: int, loss: float | None) -> None:
        if loss is not None:
            self.loss = loss
        if not self.live:
            return
        now = time.perf_counter()
        if now - self.last_draw < self.interval and step != self.steps:
            return
        self.last_draw = now
        self.stream.write("\r" + self._line(epoch, step, self.loss, None, None) + "\033[K")
        self.stream.flush()

    def finish(self, epoch: int, loss: float, value: float | None, seconds: float) -> None:
        line = self._line(epoch, self.steps, loss, value, seconds)
        self.stream.write(("\r" + line + "\033[K" if self.live else line) + "\n")
        self.stream.flush()
        self.loss = None
        self.last_loss_read = time.perf_counter()
