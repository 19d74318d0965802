"""The event's own fields as flat features, extracted by generated code.

Every base feature is one Python expression over the event (``_EXPRESSIONS``). From that one
table, :func:`extractor` generates and compiles, once per pack, a function that computes only
the features the pack reads: screening an event costs a few attribute reads per feature the
rules use, not a dictionary of every field. :func:`base_features` is the same table compiled
for every key (what a caller that wants all of them, and the tests, use)."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any

from guardrail.engine.codegen import compile_function
from guardrail.lang.catalog import ANSWERS, DOCUMENT_KINDS, OBSERVATIONS
from guardrail.model.event import DIRECTION_OF_KIND, Event, Relationship, ThirdPartyRole
from guardrail.model.features import FeatureValue

_FAMILY_ROLES = frozenset({ThirdPartyRole.FAMILY, ThirdPartyRole.GUARDIAN})


def _optional(part: str, attribute: str) -> str:
    return f"None if {part} is None else {part}.{attribute}"


# key -> expression over ``e`` and the locals of ``_LOCALS`` (generated in only when used).
# Enum members are ``str`` subclasses and compare equal to their values.
_EXPRESSIONS: dict[str, str] = {
    "kind": "e.kind",
    "direction": "_DIRECTION[e.kind]",
    "channel": "e.channel",
    "amount": "e.amount.fen",
    "currency": "e.amount.currency",
    "cross_border": "e.cross_border",
    "new_daily_limit": _optional("e.new_daily_limit", "fen"),
    "branch.id": "e.branch.id",
    "branch.region": "e.branch.region",
    "teller_id": "e.teller_id",
    **{
        f"customer.{name}": f"customer.{name}"
        for name in ("id", "id_number", "phone", "party_type", "segment", "region")
    },
    "account.id": _optional("account", "id"),
    "account.account_class": _optional("account", "account_class"),
    **{
        f"counterparty.{name}": _optional("counterparty", name)
        for name in ("account", "bank", "region", "phone", "same_name", "party_type")
    },
    "purpose.code": _optional("purpose", "code"),
    **{f"answers.{name}": f"answers.{name}" for name in ANSWERS},
    **{f"observations.{name}": f"observations.{name}" for name in OBSERVATIONS},
    # Account opening, third parties, documents and family: who and what is at the counter.
    "opening.purpose": _optional("opening", "purpose"),
    "opening.accounts_at_other_banks": _optional("opening", "accounts_at_other_banks"),
    "opening.opened_elsewhere_last_30d": _optional("opening", "opened_elsewhere_last_30d"),
    "opening.accompanied": "None if opening is None else (opening.accompanied or bool(parties))",
    "third_party.present": "bool(parties)",
    "third_party.count": "len(parties)",
    "third_party.answers_for_customer": "any(p.answers_for_customer for p in parties)",
    "third_party.agent_present": "any(p.role is _AGENT for p in parties)",
    "third_party.non_family_present": (
        "any(p.role not in _FAMILY_ROLES and p.relationship is not _FAMILY for p in parties)"
    ),
    "third_party.phone": "next((p.phone for p in parties if p.phone), None)",
    "third_party.id_number": "next((p.id_number for p in parties if p.id_number), None)",
    **{f"documents.{kind}": f"{kind!r} in shown" for kind in DOCUMENT_KINDS},
    "documents.any_verified": "any(d.verified for d in e.documents)",
    "family.present": "False if family is None else family.present",
    "family.reached_by_phone": "False if family is None else family.reached_by_phone",
    "family.confirms": _optional("family", "confirms"),
    "family.confirmed": (
        "None if family is None or family.confirms is None"
        " else family.confirms and (family.present or family.reached_by_phone)"
    ),
}

# Base features whose expression never gives None (required fields of every event).
NEVER_NONE = frozenset({"kind", "direction", "channel", "amount", "currency", "cross_border"})

# Locals an expression may use, each bound once at the top of the generated function.
_LOCALS = {
    "customer": "e.customer",
    "answers": "e.answers",
    "observations": "e.observations",
    "account": "e.account",
    "counterparty": "e.counterparty",
    "purpose": "e.purpose",
    "opening": "e.opening",
    "parties": "e.third_parties",
    "family": "e.family",
    "shown": "{d.kind.value for d in e.documents}",
}

EXTRACT_NAMESPACE: dict[str, Any] = {
    "_DIRECTION": DIRECTION_OF_KIND,
    "_AGENT": ThirdPartyRole.AGENT,
    "_FAMILY": Relationship.FAMILY,
    "_FAMILY_ROLES": _FAMILY_ROLES,
}

Extractor = Callable[[Event], dict[str, FeatureValue]]


def extractor(keys: Collection[str]) -> Extractor:
    """A compiled function computing the base features among ``keys`` (others are ignored)."""
    wanted = [key for key in _EXPRESSIONS if key in keys]
    expressions = [_EXPRESSIONS[key] for key in wanted]
    body = _local_lines(expressions)
    body.append("return {")
    body += [
        f"    {key!r}: {expression}," for key, expression in zip(wanted, expressions, strict=True)
    ]
    body.append("}")
    return compile_function("extract_features", body, parameter="e", namespace=EXTRACT_NAMESPACE)


def assignments(keys: Collection[str], prefix: str) -> tuple[list[str], dict[str, str]]:
    """Lines of Python over the event ``e`` that put each base feature among ``keys`` in a
    local variable (named ``prefix`` and a number), and the variable of each key: how a
    generated function that reads the features as locals extracts them. Its globals must
    include ``EXTRACT_NAMESPACE``."""
    wanted = [key for key in _EXPRESSIONS if key in keys]
    names = {key: f"{prefix}{index}" for index, key in enumerate(wanted)}
    lines = _local_lines([_EXPRESSIONS[key] for key in wanted])
    lines += [f"{names[key]} = {_EXPRESSIONS[key]}  # {key}" for key in wanted]
    return lines, names


def _local_lines(expressions: list[str]) -> list[str]:
    """The ``_LOCALS`` that ``expressions`` use, bound once."""
    return [
        f"{name} = {source}"
        for name, source in _LOCALS.items()
        if any(_uses(expression, name) for expression in expressions)
    ]


def _uses(expression: str, name: str) -> bool:
    return any(token == name for token in _tokens(expression))


def _tokens(expression: str) -> list[str]:
    """The names ``expression`` reads (attribute names after a dot are not names)."""
    return re.findall(r"(?<![.\w])[A-Za-z_]\w*", expression)


base_features: Extractor = extractor(_EXPRESSIONS)
"""Every base feature of an event, in one pass."""
