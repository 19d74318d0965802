"""The catalog's list of answers is the model's: a new answer field reaches rules, the field
extractor and the analyzer's counterexamples, or this test names it."""

from guardrail.lang.catalog import ANSWERS, BASE_FIELDS
from guardrail.model.event import Answers


def test_every_answer_of_the_model_is_in_the_catalog_list() -> None:
    free_text = {"purpose_detail"}  # read through lexicons, not compared as a value
    assert set(Answers.model_fields) - free_text == set(ANSWERS)


def test_every_listed_answer_is_a_field_rules_can_name() -> None:
    assert {f"answers.{name}" for name in ANSWERS} <= {info.name for info in BASE_FIELDS}
