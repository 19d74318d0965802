"""Named keyword sets matched against free text in one Aho-Corasick pass.

A term is a phrase (``安全账户``) or a *pattern* of parts joined by ``*`` (``安全*账``): the parts
in that order, each starting at most ``PATTERN_GAP`` characters after the previous one ends.
One pattern covers the ways one idea is worded at the counter (安全账户, 安全帐号, 国家安全专用
账户, 安全的账户) without an entry per wording. Parts are found in the same single pass."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import ahocorasick

from guardrail.context.normalise import normalise

FIRST_HITS_CACHE = 4096  # distinct texts whose first hits a matcher keeps (counter text repeats)
PATTERN_GAP = 4  # characters allowed between consecutive parts of a ``*`` pattern
_BREAKS = frozenset(",.;:!?、。，；：！？()（）[]\"'“”‘’/|\n")  # a gap never spans these
_PART = "\0part"  # owner name of a pattern part inside the automaton (never a lexicon name)


@dataclass(frozen=True, slots=True)
class LexiconHit:
    """One keyword found: which lexicon, the term as the pack wrote it, where in which field.

    ``start``/``end`` are a half-open range of offsets in the *normalised* text of ``field``.
    """

    lexicon: str
    term: str
    field: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class FirstHit:
    """Where a lexicon first matched a text: the term as written and its normalised offsets."""

    term: str
    start: int
    end: int


class LexiconMatcher:
    """Matches every term of every lexicon at once; immutable and safe to share across threads."""

    def __init__(self, lexicons: Mapping[str, Sequence[str]]) -> None:
        # normalised term -> ((lexicon, term as written), ...): one entry per lexicon, the first
        # spelling wins when several spellings of a lexicon normalise alike.
        owners: dict[str, dict[str, str]] = {}
        # (lexicon, term as written, normalised parts) of every ``*`` pattern
        self._patterns: list[tuple[str, str, tuple[str, ...]]] = []
        for lexicon, terms in lexicons.items():
            if isinstance(terms, str):
                raise TypeError(f"lexicon {lexicon!r}: terms must be a sequence of str, not a str")
            for term in terms:
                if "*" in term:
                    parts = tuple(normalise(part) for part in term.split("*"))
                    if all(parts):
                        self._patterns.append((lexicon, term, parts))
                        for part in parts:
                            owners.setdefault(part, {}).setdefault(_PART, part)
                    continue
                key = normalise(term)
                if key:  # a term of only spaces or invisible characters can never match
                    owners.setdefault(key, {}).setdefault(lexicon, term)
        self._names = frozenset(lexicons)
        self._automaton: ahocorasick.Automaton | None = None
        if owners:
            automaton = ahocorasick.Automaton()
            for key, by_lexicon in owners.items():
                automaton.add_word(key, (len(key), tuple(by_lexicon.items())))
            automaton.make_automaton()
            self._automaton = automaton
        self._first_hits: Callable[[str], Mapping[str, FirstHit]] = lru_cache(
            maxsize=FIRST_HITS_CACHE
        )(self._first_hits_uncached)

    @property
    def lexicons(self) -> frozenset[str]:
        """Names of the lexicons this matcher knows, including those without usable terms."""
        return self._names

    def find(self, text: str, field: str) -> list[LexiconHit]:
        """Every hit of every lexicon in ``text``, ordered by position, then lexicon name."""
        if self._automaton is None:
            return []
        normalised = normalise(text)
        if not normalised:
            return []
        hits: list[LexiconHit] = []
        parts: dict[str, list[tuple[int, int]]] = {}
        for end_index, (length, owners) in self._automaton.iter(normalised):
            end = end_index + 1
            for lexicon, term in owners:
                if lexicon == _PART:
                    parts.setdefault(term, []).append((end - length, end))
                else:
                    hits.append(LexiconHit(lexicon, term, field, end - length, end))
        if parts:
            for lexicon, term, pattern in self._patterns:
                span = _first_in_order(pattern, parts, normalised)
                if span is not None:
                    hits.append(LexiconHit(lexicon, term, field, *span))
        hits.sort(key=lambda hit: (hit.start, hit.end, hit.lexicon))
        return hits

    def first_hits(self, text: str) -> Mapping[str, FirstHit]:
        """Each lexicon's first hit in ``text`` (as :meth:`find` orders them), by lexicon name;
        lexicons without a hit are absent. Kept for the last ``FIRST_HITS_CACHE`` texts: the
        screening hot path, where the same notes and purposes come back all day. Read only."""
        return self._first_hits(text)

    def _first_hits_uncached(self, text: str) -> Mapping[str, FirstHit]:
        first: dict[str, FirstHit] = {}
        for hit in self.find(text, ""):
            if hit.lexicon not in first:
                first[hit.lexicon] = FirstHit(hit.term, hit.start, hit.end)
        return first

    def matches(self, text: str, lexicon: str, field: str = "") -> LexiconHit | None:
        """The first hit (leftmost, then shortest) of ``lexicon`` in ``text``, or None."""
        if lexicon not in self._names:
            raise KeyError(f"unknown lexicon {lexicon!r}; known: {sorted(self._names)}")
        for hit in self.find(text, field):
            if hit.lexicon == lexicon:
                return hit
        return None


def _first_in_order(
    pattern: tuple[str, ...], found: Mapping[str, Sequence[tuple[int, int]]], text: str
) -> tuple[int, int] | None:
    """The leftmost span where the parts of ``pattern`` occur in order, each beginning within
    ``PATTERN_GAP`` characters of the previous part's end, with no punctuation between them
    (parts in different clauses are different ideas); None when they do not."""
    first = found.get(pattern[0], ())
    for start, end in first:
        for part in pattern[1:]:
            following = [
                (s, e)
                for s, e in found.get(part, ())
                if end <= s <= end + PATTERN_GAP and _BREAKS.isdisjoint(text[end:s])
            ]
            if not following:
                break
            end = min(following)[1]
        else:
            return start, end
    return None
