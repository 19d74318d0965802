"""Exact money: ``Decimal`` in the model, integer fen inside engines. Floats are refused."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

MAX_AMOUNT = Decimal("1000000000000")  # one trillion yuan: far above any counter transaction


class Currency(str, Enum):
    """ISO 4217 codes the counter handles."""

    CNY = "CNY"
    USD = "USD"
    EUR = "EUR"
    HKD = "HKD"
    JPY = "JPY"
    GBP = "GBP"


def _exact_decimal(value: Any) -> Decimal:
    if isinstance(value, bool | float):
        raise ValueError("money must be a decimal string or an integer, never a float or a boolean")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value[:40]!r}") from None
    else:
        raise ValueError(
            f"money must be a decimal string or an integer, got {type(value).__name__}"
        )
    if not result.is_finite():
        raise ValueError("money must be a finite number")
    if result < 0:
        raise ValueError("money must not be negative")
    if result > MAX_AMOUNT:
        raise ValueError(f"money must not exceed {MAX_AMOUNT}")
    exponent = result.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError("money has at most two decimal places (fen)")
    return result


ExactDecimal = Annotated[Decimal, BeforeValidator(_exact_decimal)]


class Money(BaseModel):
    """An amount with its currency, e.g. ``{"value": "80000.00", "currency": "CNY"}``."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    value: ExactDecimal = Field(
        description="Amount in the currency's main unit, at most 2 decimals."
    )
    currency: Currency = Currency.CNY

    @property
    def fen(self) -> int:
        """The amount in integer minor units (fen for CNY)."""
        return to_fen(self.value)


def to_fen(value: Decimal) -> int:
    """Exact conversion of a yuan amount to integer fen."""
    return int(value * 100)


def from_fen(fen: int) -> Decimal:
    """Exact conversion of integer fen back to yuan with two decimals."""
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))
