"""Answer (undocumented; SMA applications use it): answer the leg and report at once."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Action
from .params import echoed


@dataclass(frozen=True)
class Answer(Action):
    TYPE = "Answer"
    PARAMETERS = ("CallId", "ParticipantTag")

    @classmethod
    def parse(cls, params: dict) -> "Answer":
        return cls(echoed(params))
