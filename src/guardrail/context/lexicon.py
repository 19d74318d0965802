"""Named keyword sets matched against free text in one Aho-Corasick pass."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import ahocorasick

from guardrail.context.normalise import normalise


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


class LexiconMatcher:
    """Matches every term of every lexicon at once; immutable and safe to share across threads."""

    def __init__(self, lexicons: Mapping[str, Sequence[str]]) -> None:
        # normalised term -> ((lexicon, term as written), ...): one entry per lexicon, the first
        # spelling wins when several spellings of a lexicon normalise alike.
        owners: dict[str, dict[str, str]] = {}
        for lexicon, terms in lexicons.items():
            if isinstance(terms, str):
                raise TypeError(f"lexicon {lexicon!r}: terms must be a sequence of str, not a str")
            for term in terms:
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
        for end_index, (length, owners) in self._automaton.iter(normalised):
            end = end_index + 1
            for lexicon, term in owners:
                hits.append(LexiconHit(lexicon, term, field, end - length, end))
        hits.sort(key=lambda hit: (hit.start, hit.end, hit.lexicon))
        return hits

    def matches(self, text: str, lexicon: str, field: str = "") -> LexiconHit | None:
        """The first hit (leftmost, then shortest) of ``lexicon`` in ``text``, or None."""
        if lexicon not in self._names:
            raise KeyError(f"unknown lexicon {lexicon!r}; known: {sorted(self._names)}")
        for hit in self.find(text, field):
            if hit.lexicon == lexicon:
                return hit
        return None
