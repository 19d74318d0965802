"""Turn an ``Event`` and its ``Decision`` into a protected :class:`DecisionRecord`.

Every personal value goes through the :class:`Masker`; evidence values that name a personal
field are protected as that field, and every other text (purpose, notes, evidence details,
failure messages) is redacted against the event's own personal values and long digit runs.
"""

from __future__ import annotations

from collections.abc import Mapping

from guardrail.audit.masking import FieldClass, Masker
from guardrail.audit.records import (
    AdjustmentRecord,
    ClearedRecord,
    DecisionRecord,
    EvidenceRecord,
    HitRecord,
    JsonScalar,
    ProtectedAccount,
    ProtectedCounterparty,
    ProtectedCustomer,
    ProtectedEvent,
    ShadowRecord,
)
from guardrail.model import Decision, Event, Evidence, Failure, Hit

# Evidence features that carry a personal value directly.
PERSONAL_FEATURES: dict[str, FieldClass] = {
    "customer.id": FieldClass.CUSTOMER_ID,
    "customer.name": FieldClass.NAME,
    "customer.id_number": FieldClass.ID_NUMBER,
    "customer.phone": FieldClass.PHONE,
    "customer.birth_date": FieldClass.BIRTH_DATE,
    "account.id": FieldClass.ACCOUNT,
    "counterparty.account": FieldClass.ACCOUNT,
    "counterparty.name": FieldClass.NAME,
    "counterparty.phone": FieldClass.PHONE,
}


class _Protector:
    def __init__(self, masker: Masker, event: Event) -> None:
        self.masker = masker
        customer, counterparty = event.customer, event.counterparty
        values: list[tuple[FieldClass, str | None]] = [
            (FieldClass.ID_NUMBER, customer.id_number),
            (FieldClass.PHONE, customer.phone),
            (FieldClass.NAME, customer.name),
            (FieldClass.CUSTOMER_ID, customer.id),
        ]
        if event.account is not None:
            values.append((FieldClass.ACCOUNT, event.account.id))
        if counterparty is not None:
            values += [
                (FieldClass.ACCOUNT, counterparty.account),
                (FieldClass.NAME, counterparty.name),
                (FieldClass.PHONE, counterparty.phone),
            ]
        self._values = values
        self._known: Mapping[str, str] | None = None

    @property
    def known(self) -> Mapping[str, str]:
        if self._known is None:  # built only when some free text needs it
            self._known = self.masker.known_values(self._values)
        return self._known

    def text(self, value: str) -> str:
        return self.masker.redact_text(value, self.known) if value else value

    def value(self, feature: str, value: JsonScalar) -> JsonScalar:
        field_class = PERSONAL_FEATURES.get(feature)
        if value is None or isinstance(value, bool):
            return value
        if field_class is not None:
            return self.masker.protect(field_class, str(value))
        if isinstance(value, int):
            # an integer can only leak as a known personal digit string
            return self.known.get(str(value), value)
        return self.text(value)


def redact_for_event(text: str, event: Event | None, masker: Masker) -> str:
    """Redact free text against ``event``'s personal values (if given) and long digit runs."""
    if not text:
        return text
    if event is None:
        return masker.redact_text(text)
    return _Protector(masker, event).text(text)


def protect_event(event: Event, masker: Masker) -> ProtectedEvent:
    """The event with every personal field protected by ``masker``'s policy."""
    p = _Protector(masker, event)
    return _protect_event(event, p)


def _protect_event(event: Event, p: _Protector) -> ProtectedEvent:
    m = p.masker
    c = event.customer
    customer = ProtectedCustomer(
        id=m.protect(FieldClass.CUSTOMER_ID, c.id),
        party_type=c.party_type,
        birth_date=m.protect(FieldClass.BIRTH_DATE, c.birth_date.isoformat())
        if c.birth_date
        else None,
        segment=c.segment,
        region=c.region,
        name=m.protect(FieldClass.NAME, c.name),
        id_number=m.protect(FieldClass.ID_NUMBER, c.id_number),
        phone=m.protect(FieldClass.PHONE, c.phone),
    )
    account = None
    if event.account is not None:
        a = event.account
        account = ProtectedAccount(
            id=m.protect(FieldClass.ACCOUNT, a.id),
            account_class=a.account_class,
            opened_on=a.opened_on,
            last_activity_on=a.last_activity_on,
        )
    counterparty = None
    if event.counterparty is not None:
        cp = event.counterparty
        counterparty = ProtectedCounterparty(
            account=m.protect(FieldClass.ACCOUNT, cp.account),
            name=m.protect(FieldClass.NAME, cp.name),
            bank=cp.bank,
            region=cp.region,
            same_name=cp.same_name,
            party_type=cp.party_type,
            phone=m.protect(FieldClass.PHONE, cp.phone),
        )
    answers = event.answers
    if answers.purpose_detail:
        answers = answers.model_copy(update={"purpose_detail": p.text(answers.purpose_detail)})
    return ProtectedEvent(
        event_id=event.event_id,
        kind=event.kind,
        amount=event.amount,
        amount_fen=event.amount.fen,
        channel=event.channel,
        timestamp=event.timestamp,
        branch_id=event.branch.id,
        branch_region=event.branch.region,
        teller_id=event.teller_id,
        customer=customer,
        account=account,
        counterparty=counterparty,
        purpose_code=event.purpose.code if event.purpose else None,
        purpose_text=p.text(event.purpose.text) if event.purpose else "",
        cross_border=event.cross_border,
        new_daily_limit=event.new_daily_limit,
        observations=event.observations,
        answers=answers,
        notes=p.text(event.notes),
        documents=tuple(d.model_copy(update={"description": ""}) for d in event.documents),
        family=event.family,
        third_party_roles=tuple(party.role for party in event.third_parties),
    )


def _evidence(e: Evidence, p: _Protector) -> EvidenceRecord:
    return EvidenceRecord(
        feature=e.feature, value=p.value(e.feature, e.value), detail=p.text(e.detail)
    )


def _hit(hit: Hit, p: _Protector) -> HitRecord:
    return HitRecord(
        rule_id=hit.rule_id,
        title_en=hit.title_en,
        title_zh=hit.title_zh,
        action=hit.action,
        obligations=hit.obligations,
        evidence=tuple(_evidence(e, p) for e in hit.evidence),
        source=hit.source,
        tags=hit.tags,
    )


def _failure(failure: Failure, p: _Protector) -> Failure:
    return Failure(
        stage=failure.stage, error_type=failure.error_type, message=p.text(failure.message)
    )


def decision_record(
    event: Event,
    decision: Decision,
    masker: Masker,
    *,
    case_id: str | None = None,
    supervisor_id: str | None = None,
) -> DecisionRecord:
    """Build the protected record of one screening. ``case_id`` defaults to the event id."""
    if decision.event_id != event.event_id:
        raise ValueError(
            f"decision.event_id: {decision.event_id!r} does not match event.event_id "
            f"{event.event_id!r}"
        )
    p = _Protector(masker, event)
    return DecisionRecord(
        case_id=case_id or event.event_id,
        event=_protect_event(event, p),
        pack=decision.pack,
        backend=decision.backend,
        action=decision.action,
        obligations=decision.obligations,
        hits=tuple(_hit(h, p) for h in decision.hits),
        failures=tuple(_failure(f, p) for f in decision.failures),
        elapsed_us=decision.elapsed_us,
        teller_id=event.teller_id,
        supervisor_id=supervisor_id,
        score=decision.score,
        score_parts=decision.score_parts,
        cleared=tuple(
            ClearedRecord(
                rule_id=c.rule_id,
                action=c.action,
                evidence=tuple(_evidence(e, p) for e in c.evidence),
                cleared_by=tuple(_evidence(e, p) for e in c.cleared_by),
            )
            for c in decision.cleared
        ),
        watchlists=dict(decision.watchlists),
        adjustments=tuple(
            AdjustmentRecord(
                kind=a.kind,
                rule_id=a.rule_id,
                from_action=a.from_action,
                to_action=a.to_action,
                message=p.text(a.message),
                until=a.until,
                approver=a.approver,
            )
            for a in decision.adjustments
        ),
    )


def shadow_record(event: Event, live: Decision, shadow: Decision) -> ShadowRecord:
    """The record of a candidate pack's decision beside the live one (no personal data: ids,
    actions, obligations and rule ids only)."""
    return ShadowRecord(
        case_id=event.event_id,
        event_id=event.event_id,
        occurred=event.timestamp,
        kind=event.kind,
        live_pack=live.pack,
        shadow_pack=shadow.pack,
        live_action=live.action,
        shadow_action=shadow.action,
        live_obligations=live.obligations,
        shadow_obligations=shadow.obligations,
        live_rules=live.rule_ids,
        shadow_rules=shadow.rule_ids,
        shadow_failed=shadow.failed,
    )
