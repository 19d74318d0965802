"""Which questions to ask, and turning a teller's answers into the event's ``answers``.

The questionnaire is the pack's (default: four questions, one notice). Questions to ask are
the union of the ``ask`` lists of the rules that hit and, once the action reaches ``inquire``,
the whole questionnaire, in the questionnaire's order. Each answer is checked against its
question's type (yes/no, choice, free text, number) before it reaches the event; free text is
also matched against the pack's lexicons, so the teller sees at once which scam words it holds
(the rules that use those lexicons fire when the guard re-screens the event).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from guardrail.context.lexicon import LexiconMatcher
from guardrail.errors import GuardrailError
from guardrail.lang.pack import Pack, Questionnaire
from guardrail.lang.spec import AnswerType, QuestionSpec
from guardrail.model.decision import Action, Decision
from guardrail.model.event import MAX_TEXT, Answers

AnswerValue = bool | int | str
ANSWER_PREFIX = "answers."
MAX_NUMBER = 10_000


class AnswerError(GuardrailError, ValueError):
    """An answer does not fit its question."""


def question_spec(questionnaire: Questionnaire, question_id: str) -> QuestionSpec:
    for question in questionnaire.spec.questions:
        if question.id == question_id:
            return question
    known = ", ".join(q.id for q in questionnaire.spec.questions)
    raise AnswerError(f"unknown question {question_id!r}; the questionnaire has: {known}")


def answer_field(question: QuestionSpec) -> str:
    """``answers.knows_payee`` -> ``knows_payee``."""
    return question.answer.removeprefix(ANSWER_PREFIX)


def questions_to_ask(
    pack: Pack, decisions: Iterable[Decision], action: Action, already: Iterable[str] = ()
) -> tuple[str, ...]:
    """Question ids still to ask: the ``ask`` of every rule hit in ``decisions`` and, when
    ``action`` is at least ``inquire``, the whole questionnaire; questionnaire order; without
    those in ``already``."""
    questionnaire = pack.questionnaire
    if questionnaire is None:
        return ()
    wanted: set[str] = set()
    for decision in decisions:
        for hit in decision.hits:
            try:
                wanted.update(pack.rule(hit.rule_id).spec.ask)
            except KeyError:  # a rule of another pack version: nothing to ask for it
                continue
    order = [q.id for q in questionnaire.spec.questions]
    if action >= Action.INQUIRE:
        wanted.update(order)
    done = set(already)
    return tuple(q for q in order if q in wanted and q not in done)


def validate_answer(questionnaire: Questionnaire, question_id: str, value: object) -> AnswerValue:
    """The answer as the event stores it, or ``AnswerError`` saying what was expected."""
    question = question_spec(questionnaire, question_id)
    kind = questionnaire.answer_types.get(question_id)
    if kind is AnswerType.YES_NO:
        if not isinstance(value, bool):
            raise AnswerError(f"{question_id}: expects yes/no (true or false), got {value!r}")
        return value
    if kind is AnswerType.CHOICE:
        allowed = questionnaire.choices.get(question_id, ())
        if not isinstance(value, str) or value not in allowed:
            raise AnswerError(f"{question_id}: expects one of {', '.join(allowed)}; got {value!r}")
        return value
    if kind is AnswerType.FREE_TEXT:
        if not isinstance(value, str):
            raise AnswerError(f"{question_id}: expects free text, got {value!r}")
        text = value.strip()
        if not text:
            raise AnswerError(f"{question_id}: the answer is empty")
        if len(text) > MAX_TEXT:
            raise AnswerError(f"{question_id}: longer than {MAX_TEXT} characters")
        return text
    if kind is AnswerType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int):
            raise AnswerError(f"{question_id}: expects a whole number, got {value!r}")
        if not 0 <= value <= MAX_NUMBER:
            raise AnswerError(f"{question_id}: expects a number from 0 to {MAX_NUMBER}")
        return value
    raise AnswerError(f"{question_id}: {question.answer} cannot be answered at the counter")


def apply_answers(
    answers: Answers, questionnaire: Questionnaire, values: Mapping[str, AnswerValue]
) -> Answers:
    """``answers`` with each validated value written to its question's ``answers.*`` field."""
    data = answers.model_dump(mode="json")
    for question_id, value in values.items():
        data[answer_field(question_spec(questionnaire, question_id))] = value
    # JSON mode: the strict model takes enum values as their strings.
    return Answers.model_validate_json(json.dumps(data, ensure_ascii=False))


_MATCHERS: dict[int, tuple[Pack, LexiconMatcher]] = {}


def _matcher(pack: Pack) -> LexiconMatcher:
    # Packs are not hashable (they hold mappings): cache by identity, checked.
    cached = _MATCHERS.get(id(pack))
    if cached is None or cached[0] is not pack:
        matcher = LexiconMatcher({name: spec.terms for name, spec in pack.lexicons.items()})
        cached = _MATCHERS[id(pack)] = (pack, matcher)
    return cached[1]


def lexicon_matches(pack: Pack, text: str) -> tuple[str, ...]:
    """Names of the pack's lexicons found in ``text`` (sorted, each once)."""
    if not pack.lexicons or not text:
        return ()
    return tuple(sorted({hit.lexicon for hit in _matcher(pack).find(text, "answer")}))
