"""How a counter case ends. One enum shared with the audit log, so reports count the same
outcomes the session records."""

from __future__ import annotations

from guardrail.model.session import PREVENTED_OUTCOMES, Outcome, prevented

TITLES_ZH: dict[Outcome, str] = {
    Outcome.EXECUTED: "已办理",
    Outcome.WITHDRAWN_AFTER_DISSUASION: "经劝阻客户放弃办理",
    Outcome.INTERCEPTED: "已拦截",
    Outcome.POLICE_NOTIFIED: "已报警（110/结对派出所/96110）",
    Outcome.PROTECTIVE_STOP_PAYMENT: "保护性止付",
}

TITLES_EN: dict[Outcome, str] = {
    Outcome.EXECUTED: "Executed",
    Outcome.WITHDRAWN_AFTER_DISSUASION: "Withdrawn by the customer after dissuasion",
    Outcome.INTERCEPTED: "Intercepted",
    Outcome.POLICE_NOTIFIED: "Police or the paired station notified",
    Outcome.PROTECTIVE_STOP_PAYMENT: "Protective stop-payment",
}


__all__ = ["PREVENTED_OUTCOMES", "TITLES_EN", "TITLES_ZH", "Outcome", "prevented"]
