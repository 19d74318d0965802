"""Features: the flat, typed values of one event that rules read (``customer.age``,
``window.cash_out_24h``, ``lexicon.safe_account(notes)``). Shared by the context layer that
computes them, the engines that read them and ``decide`` that explains hits with them."""

from __future__ import annotations

from collections.abc import Mapping

FeatureValue = bool | int | str | None
"""A feature's value: booleans, integers (money in fen, dates as ``YYYYMMDD``), strings, or
``None`` for unknown."""

Features = Mapping[str, FeatureValue]


class FeatureMap(dict[str, FeatureValue]):
    """Plain feature values keyed by feature name; reading a key that is absent gives ``None``
    (unknown). Never computes anything: every value is in the map before an engine reads it."""

    __slots__ = ()

    def __missing__(self, key: str) -> FeatureValue:
        return None


def as_feature_map(features: Features) -> FeatureMap:
    """``features`` itself when it is already a ``FeatureMap``, else a copy that is one."""
    return features if isinstance(features, FeatureMap) else FeatureMap(features)
