"""LexiconMatcher: one automaton over all lexicons, matching on normalised text."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrail.context import LexiconHit, LexiconMatcher, normalise

LEXICONS = {
    "safe_account": ["安全账户", "Safe Account"],
    "task_scam": ["刷单", "返利", "做任务"],
    "credit_repair": ["征信修复", "注销贷款", "安全账户"],  # shares a term with safe_account
}


@pytest.fixture(scope="module")
def matcher() -> LexiconMatcher:
    return LexiconMatcher(LEXICONS)


@pytest.mark.parametrize(
    "text",
    ["安全帳戶", "安全账户", "安全帐户", "ａｎ安全　帳\u200b戶", "对方说要转到安全賬戶里"],
)
def test_script_and_width_variants_hit_the_same_entry(matcher: LexiconMatcher, text: str) -> None:
    hit = matcher.matches(text, "safe_account")
    assert hit is not None
    assert hit.term == "安全账户"  # the term as written in the pack
    assert normalise(text)[hit.start : hit.end] == "安全账户"


def test_hit_records_field_and_offsets(matcher: LexiconMatcher) -> None:
    hits = matcher.find("客户说 做任务 有返利", field="purpose.text")
    assert hits == [
        LexiconHit("task_scam", "做任务", "purpose.text", 3, 6),
        LexiconHit("task_scam", "返利", "purpose.text", 7, 9),
    ]


def test_term_in_several_lexicons_is_reported_for_each(matcher: LexiconMatcher) -> None:
    hits = matcher.find("安全账户", field="notes")
    assert {(hit.lexicon, hit.term) for hit in hits} == {
        ("safe_account", "安全账户"),
        ("credit_repair", "安全账户"),
    }


def test_case_insensitive_latin(matcher: LexiconMatcher) -> None:
    hit = matcher.matches("move it to a SAFE  account now", "safe_account")
    assert hit is not None and hit.term == "Safe Account"


def test_every_occurrence_found(matcher: LexiconMatcher) -> None:
    hits = matcher.find("刷单刷单", field="notes")
    assert [(hit.start, hit.end) for hit in hits] == [(0, 2), (2, 4)]


def test_no_hit_and_unknown_lexicon(matcher: LexiconMatcher) -> None:
    assert matcher.find("取现给孙子交学费", field="notes") == []
    assert matcher.matches("", "safe_account") is None
    with pytest.raises(KeyError, match="unknown lexicon"):
        matcher.matches("安全账户", "no_such_lexicon")


def test_empty_and_duplicate_terms() -> None:
    matcher = LexiconMatcher({"a": ["", "  ", "\u200b", "保证金", "保證金", "保证金"], "b": []})
    assert matcher.lexicons == frozenset({"a", "b"})
    hits = matcher.find("交保證金", field="notes")
    assert hits == [LexiconHit("a", "保证金", "notes", 1, 4)]  # once, first spelling
    assert matcher.matches("anything", "b") is None
    assert LexiconMatcher({}).find("保证金", field="notes") == []


def test_a_str_instead_of_a_list_is_refused() -> None:
    with pytest.raises(TypeError):
        LexiconMatcher({"a": "保证金"})


def test_concurrent_use(matcher: LexiconMatcher) -> None:
    texts = [f"第{i}笔 安全帳戶 刷单" for i in range(400)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda t: matcher.find(t, "notes"), texts))
    assert all(len(hits) == 3 for hits in results)


@settings(max_examples=200, deadline=None)
@given(prefix=st.text(max_size=50), suffix=st.text(max_size=50))
def test_term_embedded_anywhere_is_found(matcher: LexiconMatcher, prefix: str, suffix: str) -> None:
    hits = matcher.find(prefix + "安全帳戶" + suffix, field="notes")
    assert any(hit.lexicon == "safe_account" for hit in hits)
