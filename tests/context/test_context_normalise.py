"""normalise: one canonical form for script, width, case and spacing variants; total on str."""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from guardrail.context import normalise
from guardrail.model.event import MAX_TEXT


def test_traditional_simplified_and_full_width_agree() -> None:
    expected = normalise("安全账户")
    assert expected == "安全账户"
    assert normalise("安全帳戶") == expected
    assert normalise("安全帐户") == expected  # the other simplified spelling of 账
    assert normalise("ａｎｑｕａｎ 安　全\u200b账\u00a0户") == "anquan安全账户"


def test_case_spacing_and_invisible_characters_removed() -> None:
    assert normalise("  Safe\tACCOUNT\n") == "safeaccount"
    assert normalise("刷\u200d单\ufeff返\u2060利\x00") == "刷单返利"
    assert normalise("安\ufe0f全") == "安全"  # variation selector
    assert normalise("徵信修復") == "征信修复"


def test_empty_and_only_invisible() -> None:
    assert normalise("") == ""
    assert normalise(" \u3000\u200b\t\r\n") == ""


def test_lone_surrogates_and_combining_marks_do_not_crash() -> None:
    assert normalise("a\ud800b") == "ab"
    assert isinstance(normalise("\u0301"), str)
    assert isinstance(normalise("\u0301" * MAX_TEXT), str)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=MAX_TEXT))
def test_never_crashes_and_is_stable(text: str) -> None:
    once = normalise(text)
    assert isinstance(once, str)
    assert not any(ch.isspace() for ch in once)
    assert normalise(once) == once


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=MAX_TEXT, max_size=MAX_TEXT))
def test_full_length_text(text: str) -> None:
    assert isinstance(normalise(text), str)


def test_concurrent_first_use_is_safe() -> None:
    results: list[str] = []

    def work() -> None:
        results.append(normalise("銀行帳戶 凍結"))

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(results) == {"银行账户冻结"}
