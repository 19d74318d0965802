"""What an engine backend is: compiled once per pack, then asked which rules some features hit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from guardrail.errors import GuardrailError

FeatureValue = bool | int | str | None
Features = Mapping[str, FeatureValue]


class FeatureMap(dict[str, FeatureValue]):
    """Features as the engines read them: ``features[key]`` of a missing key is ``None``
    (unknown). Subclasses may compute a missing feature on first read instead."""

    __slots__ = ()

    def __missing__(self, key: str) -> FeatureValue:
        return None


def as_feature_map(features: Features) -> FeatureMap:
    """``features`` itself when it is already a ``FeatureMap``, else a copy that is one."""
    return features if isinstance(features, FeatureMap) else FeatureMap(features)


class Backend(Protocol):
    """Evaluates every rule of one pack against the features of one event.

    ``evaluate`` returns the ids of every rule whose condition is true, in pack order.
    Implementations are safe to call from many threads at once.
    """

    name: str

    def evaluate(self, features: Features) -> list[str]: ...


class EngineError(GuardrailError):
    """The engine could not evaluate; screening fails closed to at least ``review``."""
