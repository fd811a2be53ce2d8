"""What the app asks of its driver, as small typed values: each knows its busy label and its driver call.

No textual here: the scheduler queues these, one worker runs them (`SpecDecApp.run_operation`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from .driver import Driver

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class Operation:
    label: ClassVar[str] = ""
    restarts: ClassVar[bool] = False  # starts decoding over: steps queued before it are void
    still: ClassVar[bool] = False  # it times decoding: the spinner holds still, its redraws would steal a core

    def run(self, driver: Driver, progress: Progress) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Load(Operation):
    prompt: str
    label: ClassVar[str] = "loading"

    def run(self, driver, progress):
        driver.load(progress)
        return driver.reset(self.prompt)


@dataclass(frozen=True)
class Step(Operation):
    changes: dict = field(default_factory=dict)  # settings changed since the last step (filled in when it starts)
    label: ClassVar[str] = "stepping"

    def run(self, driver, progress):
        return driver.step(dict(self.changes))


@dataclass(frozen=True)
class Reset(Operation):
    prompt: str
    label: ClassVar[str] = "resetting"
    restarts: ClassVar[bool] = True

    def run(self, driver, progress):
        return driver.reset(self.prompt)


@dataclass(frozen=True)
class SwitchDrafter(Operation):
    spec: str
    prompt: str
    label: ClassVar[str] = "switching drafter"
    restarts: ClassVar[bool] = True

    def run(self, driver, progress):
        return driver.switch_drafter(self.spec, self.prompt)


@dataclass(frozen=True)
class Baseline(Operation):
    label: ClassVar[str] = "timing plain and speculative decoding"
    still: ClassVar[bool] = True

    def run(self, driver, progress):
        return driver.baseline()


@dataclass(frozen=True)
class Save(Operation):
    label: ClassVar[str] = "saving"

    def run(self, driver, progress):
        return driver.save()
