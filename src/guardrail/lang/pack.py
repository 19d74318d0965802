"""What a loaded pack is: checked, typed rules and the declarations they use.

Loading lives in ``guardrail.lang.loader`` (folders and YAML), ``guardrail.lang.overlay``
(merging base packs and overlays by date and region) and ``guardrail.lang.identity`` (the
content hash).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from guardrail.lang.catalog import Catalog
from guardrail.lang.declarations import LexiconSpec, WatchlistSpec, WindowSpec
from guardrail.lang.errors import Diagnostic, Location
from guardrail.lang.ir import All, Condition, FieldRef, RefKind, refs
from guardrail.lang.spec import AnswerType, PackMeta, QuestionnaireSpec, RuleSpec, ScoreBand
from guardrail.model.decision import Action, Obligation, PackRef

PACK_FILE = "pack.yaml"
DATA_DIR = "data"  # watchlist sources; not rule files
APPROVAL_FILE = "approval.json"  # the signed maker-checker manifest; not part of the content
KIND_KEY = "kind"
CLEARS_SUFFIX = "#clears"  # engine id of a rule's clearing condition; '#' is never in a rule id
# Rules with these tags, a report action or a report obligation can never be cleared.
UNCLEARABLE_TAGS = frozenset({"typology", "watchlist", "regulatory"})
REPORT_OBLIGATIONS = frozenset(
    {Obligation.LARGE_VALUE_REPORT, Obligation.SUSPICIOUS_TRANSACTION_REPORT}
)


@dataclass(frozen=True)
class CompiledRule:
    """A rule ready for the engines: its spec, its checked condition and where it came from.

    ``key`` is unique in the pack: the rule's id, or ``id@pack`` for a base version that an
    overlay replaces from some date or in some region (both versions stay, with disjoint
    scopes, so the base still applies where and when the overlay does not)."""

    spec: RuleSpec
    condition: Condition  # the author's condition, in IR
    guarded: Condition  # kinds, dates and region folded in: what the engines evaluate
    location: Location
    pack: str
    key: str = ""
    region: str | None = None  # the pack's region that scopes this rule, if any
    clears: Condition | None = None  # the author's clearing condition, in IR
    scope: tuple[Condition, ...] = ()  # kinds, dates, region, later versions: ``guarded`` less
    # the condition, so the clearing condition gets exactly the same guard

    @property
    def id(self) -> str:
        """The engines' unique name for this rule version."""
        return self.key or self.spec.id

    @property
    def rule_id(self) -> str:
        """The rule's id as written (shared by every version of an overridden rule)."""
        return self.spec.id

    @property
    def action(self) -> Action:
        return self.spec.action

    @cached_property
    def evidence_refs(self) -> tuple[FieldRef, ...]:
        return tuple(refs(self.condition))

    @cached_property
    def clears_refs(self) -> tuple[FieldRef, ...]:
        return () if self.clears is None else tuple(refs(self.clears))

    def clearing_rule(self) -> CompiledRule | None:
        """The clearing condition as an ordinary rule the engines evaluate (id ``X#clears``),
        guarded by the same kinds, dates and region; None when the rule declares no
        ``clears``."""
        if self.clears is None:
            return None
        spec = self.spec.model_copy(
            update={"id": self.spec.id + CLEARS_SUFFIX, "clears": None, "score": 0}
        )
        items = self.clears.items if isinstance(self.clears, All) else (self.clears,)
        return CompiledRule(
            spec=spec,
            condition=self.clears,
            guarded=All((*self.scope, *items)) if self.scope else self.clears,
            location=self.location,
            pack=self.pack,
            key=self.id + CLEARS_SUFFIX,
            region=self.region,
        )

    @cached_property
    def watchlists(self) -> frozenset[str]:
        """Names of the watchlists this rule's condition reads."""
        return frozenset(ref.name for ref in refs(self.condition) if ref.kind is RefKind.WATCHLIST)


@dataclass(frozen=True)
class Questionnaire:
    spec: QuestionnaireSpec
    answer_types: Mapping[str, AnswerType]  # question id -> answer type
    choices: Mapping[str, tuple[str, ...]]  # question id -> allowed values (choice questions)


@dataclass(frozen=True)
class Pack:
    """A loaded, checked pack (with its base packs merged in)."""

    meta: PackMeta
    root: Path
    content_hash: str
    rules: tuple[CompiledRule, ...]
    windows: Mapping[str, WindowSpec]
    watchlists: Mapping[str, WatchlistSpec]
    watchlist_paths: Mapping[str, Path]
    lexicons: Mapping[str, LexiconSpec]
    questionnaire: Questionnaire | None
    catalog: Catalog
    warnings: tuple[Diagnostic, ...] = ()
    chain: tuple[str, ...] = field(default=())  # pack names, base first
    watchlist_digests: Mapping[str, str] = field(default_factory=dict)  # name -> content version
    score_bands: tuple[ScoreBand, ...] = ()

    @cached_property
    def engine_rules(self) -> tuple[CompiledRule, ...]:
        """What a backend compiles: every rule, then every rule's clearing condition."""
        clearing = (rule.clearing_rule() for rule in self.rules)
        return (*self.rules, *(rule for rule in clearing if rule is not None))

    def score_action(self, score: int) -> Action:
        """The action the pack's score bands give ``score`` (proceed below every band)."""
        reached = [band.action for band in self.score_bands if score >= band.min_score]
        return max(reached, default=Action.PROCEED)

    @cached_property
    def ref(self) -> PackRef:
        return PackRef(
            name=self.meta.name, version=self.meta.version, content_hash=self.content_hash
        )

    @cached_property
    def rules_by_id(self) -> Mapping[str, CompiledRule]:
        """Every rule version by its unique key (``CompiledRule.id``)."""
        return {rule.id: rule for rule in self.rules}

    @cached_property
    def versions(self) -> Mapping[str, tuple[CompiledRule, ...]]:
        """Every version of each rule id as written, base first."""
        grouped: dict[str, list[CompiledRule]] = {}
        for rule in self.rules:
            grouped.setdefault(rule.rule_id, []).append(rule)
        return {rule_id: tuple(found) for rule_id, found in grouped.items()}

    def rule(self, rule_id: str) -> CompiledRule:
        """The rule with this key, or the current (top-most) version of this id."""
        found = self.rules_by_id.get(rule_id)
        if found is not None:
            return found
        return self.versions[rule_id][-1]


def yyyymmdd(day: dt.date) -> int:
    return int(day.strftime("%Y%m%d"))


def __getattr__(name: str) -> Any:
    # load_pack and lint_pack moved to guardrail.lang.loader; old imports keep working.
    if name in ("load_pack", "lint_pack"):
        from guardrail.lang import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
