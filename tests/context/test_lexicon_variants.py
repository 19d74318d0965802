"""The baseline lexicons against the ways one idea is worded (rules/cn-baseline/data/
lexicon_variants.yaml): every variant matches its lexicon, no ordinary purpose matches any."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from guardrail.context.lexicon import LexiconMatcher
from guardrail.lang.loader import load_pack
from support import BASELINE

_VARIANTS: dict[str, Any] = yaml.safe_load(
    (BASELINE / "data" / "lexicon_variants.yaml").read_text(encoding="utf-8")
)
_PACK = load_pack(BASELINE)
_MATCHER = LexiconMatcher({name: spec.terms for name, spec in _PACK.lexicons.items()})


@pytest.mark.parametrize("lexicon", sorted(_VARIANTS["match"]))
def test_every_wording_of_an_idea_matches(lexicon: str, capsys: pytest.CaptureFixture[str]) -> None:
    variants = _VARIANTS["match"][lexicon]
    missed = [text for text in variants if _MATCHER.matches(text, lexicon) is None]
    with capsys.disabled():
        print(f"\n{lexicon}: {len(variants) - len(missed)}/{len(variants)} variants matched")
    assert not missed, f"{lexicon} misses {missed}"


def test_ordinary_purposes_match_no_lexicon() -> None:
    hits = {text: _MATCHER.find(text, "purpose.text") for text in _VARIANTS["no_match"]}
    assert {text: [h.term for h in found] for text, found in hits.items() if found} == {}


def test_a_pattern_does_not_span_clauses() -> None:
    matcher = LexiconMatcher({"s": ["安全*账"]})
    assert matcher.matches("转到安全的帐号", "s") is not None
    assert matcher.matches("很安全，账户不用动", "s") is None
    assert matcher.matches("安全帽子的货款账", "s") is None  # more than the gap apart
