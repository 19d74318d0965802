#!/usr/bin/env python
"""柜员防诈骗问询台 Teller anti-fraud console: walks a teller through one counter session.

Interactive (a teller at the counter; no need to activate the virtualenv)::

    .venv/bin/python examples/teller_console.py --event examples/events/elderly_cash_on_phone.json

Scripted (answers from a file; what the tests drive)::

    python examples/teller_console.py --pack rules/starter \
        --script tests/counter/scripts/case_003.yaml

A script is YAML or JSON: ``event`` (inline) or ``event_file`` (relative to the script), an
optional ``teller_id`` and ``session_id``, and ``steps``, each one of::

    ask: all | default | [question ids]      answer: {question id or answers field: value}
    observe: [on_phone, nervous, ...]        notice / acknowledge / risk_acknowledgement
    raise: {to: intercept, reason: ...}      escalate: reason
    approve: {supervisor: S01, reason: ...}  reject: {supervisor: S01, reason: ...}
    override: {supervisor: S01, to: review, reason: ...}
    outcome: {outcome: police_notified, confirmed_fraud: true, note: ...}
    execute (outcome executed)               close
    expect_refused: <any step above>         (the step must be refused)

A step may carry ``when_action_at_least: notice`` to apply only at that action or above.
``--state FILE`` saves the session after every step and resumes it when the file exists
(a restart of the teller application loses nothing). ``--audit FILE`` writes every step, and
every refused attempt, to an audit log (key from GUARDRAIL_AUDIT_KEY). Exit status: 0 closed
or saved, 2 a step was refused unexpectedly, 3 an expected refusal did not happen, 1 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file from a checkout that was not installed
    _SRC = Path(__file__).resolve().parents[1] / "src"
    if _SRC.is_dir() and str(_SRC) not in sys.path:
        sys.path.insert(0, str(_SRC))

import yaml
from rich.console import Console
from rich.panel import Panel
from rich.prompt import Confirm, IntPrompt, Prompt
from rich.table import Table

from guardrail.counter import CounterSession, IllegalStep, Outcome, SessionRecord
from guardrail.counter.outcome import TITLES_EN, TITLES_ZH
from guardrail.guard import Guard, parse_event
from guardrail.lang.spec import AnswerType
from guardrail.model import Action, Decision
from guardrail.model.decision import TITLES_ZH as ACTION_ZH

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "rules" / "cn-baseline"
STARTER = ROOT / "rules" / "starter"
DEFAULT_EVENT = ROOT / "examples" / "events" / "elderly_cash_on_phone.json"

STEP_LABELS: dict[str, tuple[str, str]] = {
    "ask": ("问询", "Ask questions"),
    "answer": ("记录回答", "Record answers"),
    "observe": ("记录观察", "Record observations"),
    "notice": ("送达告知书", "Deliver the notice"),
    "acknowledge": ("客户签字确认告知书", "Customer acknowledges the notice"),
    "risk_acknowledgement": ("客户签署风险确认书", "Customer signs the risk acknowledgement"),
    "raise": ("柜员提高处置级别", "Teller raises the action"),
    "escalate": ("上报主管", "Escalate to the supervisor"),
    "approve": ("主管同意办理", "Supervisor approves"),
    "reject": ("主管拒绝办理", "Supervisor rejects"),
    "override": ("主管调整处置级别", "Supervisor overrides the action"),
    "outcome": ("记录结果", "Record the outcome"),
    "execute": ("办理业务", "Execute the request"),
    "close": ("结束会话", "Close the session"),
}


class ScriptError(Exception):
    """The script itself is wrong (not a refused step)."""


def default_pack() -> Path:
    """The baseline pack when it is there, else the starter pack."""
    return BASELINE if (BASELINE / "pack.yaml").is_file() else STARTER


def action_label(action: Action) -> str:
    return f"{ACTION_ZH[action]} {action.value}"


# Chinese beside every code a teller chooses or reads (the codes are what the engine keeps).
CHOICE_ZH: dict[str, str] = {
    # purposes
    "living_expenses": "生活开支",
    "medical": "医疗",
    "education": "教育/学费",
    "house_purchase": "购房",
    "car_purchase": "购车",
    "investment": "投资理财",
    "loan_repayment": "还贷",
    "business": "经营/货款",
    "family_support": "家庭资助",
    "gift": "赠与",
    "travel": "旅游",
    "pension": "养老金",
    "salary": "工资",
    "deposit_takings": "存营业款",
    "insurance": "保险",
    "other": "其他",
    # relationships
    "self": "本人",
    "family": "家人",
    "friend": "朋友",
    "met_online": "网上认识",
    "official": "自称公检法/银行人员",
    "unknown": "不认识",
    # verdicts
    "yes": "是，确认诈骗",
    "no": "否，并非诈骗",
    "not_known": "尚不确定",
}
OBLIGATION_ZH: dict[str, str] = {
    "large_value_report": "大额交易报告",
    "suspicious_transaction_report": "可疑交易报告",
    "cash_purpose_registration": "大额现金用途登记",
    "advance_booking": "提前预约",
    "dual_recording": "双录",
    "signed_risk_notice": "签署风险告知书",
    "identity_reverification": "重新核验身份",
    "family_contact": "联系家属",
}


def choice_label(code: str) -> str:
    """``投资理财 investment``: the Chinese label (when known) and the code."""
    if code in CHOICE_ZH:
        return f"{CHOICE_ZH[code]} {code}"
    if code in {a.value for a in Action}:
        return action_label(Action(code))
    if code in {o.value for o in Outcome}:
        return f"{TITLES_ZH[Outcome(code)]} {code}"
    return code


def choose(console: Console, title: str, codes: list[str]) -> str:
    """A numbered list of choices in Chinese and code; the teller types a number or a code."""
    for number, code in enumerate(codes, start=1):
        console.print(f"    {number:>2}. {choice_label(code)}")
    while True:
        raw = Prompt.ask(title, console=console).strip()
        if raw in codes:
            return raw
        if raw.isdigit() and 1 <= int(raw) <= len(codes):
            return codes[int(raw) - 1]
        console.print("[red]请输入序号或代码 Type a number or a code[/red]")


# -- applying one step ---------------------------------------------------------------------------
def question_for(session: CounterSession, key: str) -> str:
    """A question id from an id or an ``answers.*`` field name."""
    questionnaire = session.guard.pack.questionnaire
    if questionnaire is None:
        return key
    field = key if key.startswith("answers.") else f"answers.{key}"
    for question in questionnaire.spec.questions:
        if key == question.id:
            return key
    for question in questionnaire.spec.questions:
        if question.answer == field:
            return question.id
    return key


def all_questions(session: CounterSession) -> list[str]:
    questionnaire = session.guard.pack.questionnaire
    if questionnaire is None:
        return []
    asked = set(session.questions_asked)
    return [q.id for q in questionnaire.spec.questions if q.id not in asked]


def apply_step(session: CounterSession, name: str, arg: Any) -> object:
    """Apply one script step to ``session``; IllegalStep propagates."""
    arg = {} if arg is None else arg
    if name == "ask":
        if arg == "all":
            return session.ask_questions(all_questions(session))
        if arg == "default" or arg == {}:
            return session.ask_questions()
        return session.ask_questions([question_for(session, q) for q in arg])
    if name == "answer":
        return session.record_answers({question_for(session, k): v for k, v in arg.items()})
    if name == "observe":
        return session.record_observations([arg] if isinstance(arg, str) else arg)
    if name == "notice":
        return session.deliver_notice()
    if name == "acknowledge":
        return session.acknowledge_notice()
    if name == "risk_acknowledgement":
        return session.sign_risk_acknowledgement()
    if name == "raise":
        return session.teller_raise(arg["to"], arg.get("reason", ""))
    if name == "escalate":
        return session.escalate(arg if isinstance(arg, str) else arg.get("reason", ""))
    if name == "approve":
        return session.supervisor_approve(arg["supervisor"], arg.get("reason", ""))
    if name == "reject":
        return session.supervisor_reject(arg["supervisor"], arg.get("reason", ""))
    if name == "override":
        return session.supervisor_override(arg["supervisor"], arg["to"], arg.get("reason", ""))
    if name == "outcome":
        if isinstance(arg, str):
            arg = {"outcome": arg}
        return session.record_outcome(
            arg["outcome"], confirmed_fraud=arg.get("confirmed_fraud"), note=arg.get("note", "")
        )
    if name == "execute":
        return session.record_outcome(Outcome.EXECUTED, note=arg.get("note", ""))
    if name == "close":
        return session.close()
    raise ScriptError(f"unknown step {name!r}; one of: {', '.join(STEP_LABELS)}")


def split_step(raw: Any) -> tuple[str, Any, Action | None]:
    """``notice`` / ``{notice: ...}`` / ``{notice: ..., when_action_at_least: x}``."""
    if isinstance(raw, str):
        return raw, None, None
    if not isinstance(raw, dict):
        raise ScriptError(f"a step is a name or a mapping, got {raw!r}")
    data = dict(raw)
    when = data.pop("when_action_at_least", None)
    if len(data) != 1:
        raise ScriptError(f"a step has exactly one name, got {sorted(data)}")
    ((name, arg),) = data.items()
    return str(name), arg, Action(when) if when is not None else None


# -- showing ----------------------------------------------------------------------------------
def show_decision(console: Console, session: CounterSession, decision: Decision) -> None:
    table = Table(title="规则命中 Rules hit", show_lines=True)
    table.add_column("规则 Rule", overflow="fold")
    table.add_column("说明 Title")
    table.add_column("级别 Action")
    table.add_column("柜员指引 What to do")
    for hit in decision.hits:
        table.add_row(
            hit.rule_id,
            f"{hit.title_zh}\n{hit.title_en}",
            action_label(hit.action)
            + (
                f"\n+{hit_score(decision, hit.rule_id)}分"
                if hit_score(decision, hit.rule_id)
                else ""
            ),
            f"{hit.notice_zh}\n{hit.notice_en}".strip(),
        )
    if decision.hits:
        console.print(table, soft_wrap=False)
    if decision.obligations:
        duties = "、".join(
            f"{OBLIGATION_ZH.get(o.value, o.value)} {o.value}" for o in decision.obligations
        )
        console.print(f"合规义务 Obligations: {duties}")
    if decision.score:
        console.print(
            f"风险评分 Risk score: {decision.score} → {action_label(decision.score_action)}"
            f"（单条规则最高 highest single rule: {action_label(decision.ladder_action)}）"
        )
    for cleared in decision.cleared:
        reasons = ", ".join(f"{e.feature}={e.value}" for e in cleared.cleared_by)
        console.print(
            f"已解除 Cleared: {cleared.rule_id} {cleared.title_zh}"
            f"（{action_label(cleared.action)}）by {reasons}"
        )
    console.print(f"当前处置 Effective action: [bold]{action_label(session.action)}[/bold]")
    waiting = session.questions_to_ask()
    if waiting:
        console.print(f"待问询 Questions to ask: {', '.join(waiting)}")


def hit_score(decision: Decision, rule_id: str) -> int:
    return sum(part.weight for part in decision.score_parts if part.rule_id == rule_id)


def show_record(console: Console, record: SessionRecord) -> None:
    table = Table(title="会话记录 Session record")
    table.add_column("项目 Field")
    table.add_column("值 Value")
    rows = [
        ("会话 Session", record.session_id),
        ("金额 Amount", f"{record.amount.value} {record.amount.currency.value}"),
        ("首次处置 First action", action_label(record.first_action)),
        ("最终处置 Final action", action_label(record.final_action)),
        ("决定人 Decided by", f"{record.decided_by} {record.decided_by_id or ''}".strip()),
        ("命中规则 Rules", ", ".join(record.rule_ids) or "-"),
        ("用时 Duration", f"{record.duration_seconds:.0f} s"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


def print_outcome(console: Console, session: CounterSession) -> None:
    outcome = session.outcome
    if outcome is None:
        console.print("结果 Outcome: (未记录 none yet)")
        return
    console.print(f"结果 Outcome: {outcome.value} ({TITLES_ZH[outcome]} / {TITLES_EN[outcome]})")


# -- persistence ----------------------------------------------------------------------------------
class Saver:
    """Keeps ``{"next_step": n, "session": {...}}`` in the state file after every step."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def __call__(self, session: CounterSession, next_step: int = 0) -> None:
        if self.path is not None:
            data = {"next_step": next_step, "session": json.loads(session.to_json())}
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
            tmp.replace(self.path)  # atomic: a crash leaves the old or the new state


def saved_step(path: Path | None) -> int:
    if path is None or not path.is_file():
        return 0
    return int(json.loads(path.read_text(encoding="utf-8"))["next_step"])


def start_session(
    guard: Guard, event_data: Any, args: argparse.Namespace, extra: dict[str, Any]
) -> CounterSession:
    audit = open_audit(args.audit)
    if args.state is not None and args.state.is_file():
        saved = json.loads(args.state.read_text(encoding="utf-8"))["session"]
        return CounterSession.from_json(json.dumps(saved), guard, audit=audit)
    event = parse_event(event_data)
    return CounterSession.open(
        guard,
        event,
        teller_id=extra.get("teller_id"),
        session_id=extra.get("session_id"),
        audit=audit,
    )


def open_audit(path: Path | None) -> Any:
    if path is None:
        return None
    from guardrail.audit import AuditLog

    return AuditLog.open(path)


# -- scripted mode ------------------------------------------------------------------------
def run_script(console: Console, guard: Guard, args: argparse.Namespace) -> int:
    path: Path = args.script
    text = path.read_text(encoding="utf-8")
    script = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(script, dict) or "steps" not in script:
        raise ScriptError("a script is a mapping with 'event' (or 'event_file') and 'steps'")
    if "event_file" in script:
        event_data = json.loads((path.parent / script["event_file"]).read_text(encoding="utf-8"))
    else:
        event_data = script["event"]
    done = saved_step(args.state)  # script steps already taken (when resuming)
    session = start_session(guard, event_data, args, script)
    save = Saver(args.state)
    save(session, done)
    console.print(f"包 Pack: {guard.pack.ref.name} {guard.pack.ref.version}")
    console.print(f"会话 Session: {session.session_id}  柜员 Teller: {session.teller_id}")
    show_decision(console, session, session.decision)
    if done:
        console.print(f"恢复会话 Resumed after step {done}")
    for index, raw in enumerate(script["steps"][done:], start=done + 1):
        if args.stop_after is not None and index > args.stop_after:
            console.print(f"暂停 Stopped after step {args.stop_after}; state saved")
            return 0
        name, arg, when = split_step(raw)
        expect_refused = name == "expect_refused"
        if expect_refused:
            name, arg, when = split_step(arg)
        zh, en = STEP_LABELS.get(name, (name, name))
        if when is not None and session.action < when:
            console.print(f"{index:>2}. - {zh} {en}: 跳过 skipped (action below {when.value})")
            save(session, index)
            continue
        try:
            result = apply_step(session, name, arg)
        except IllegalStep as error:
            if expect_refused:
                console.print(f"{index:>2}. ✗ {zh} {en}: 按预期拒绝 refused as expected: {error}")
                save(session, index)
                continue
            console.print(f"{index:>2}. ✗ {zh} {en}: 拒绝 REFUSED: {error}")
            print_outcome(console, session)
            return 2
        if expect_refused:
            console.print(f"{index:>2}. ! {zh} {en}: 应被拒绝却已执行 applied but must be refused")
            return 3
        save(session, index)
        console.print(f"{index:>2}. ✓ {zh} {en} → {action_label(session.action)}")
        if isinstance(result, Decision):
            show_decision(console, session, result)
        if isinstance(result, SessionRecord):
            show_record(console, result)
        if name in ("notice", "risk_acknowledgement") and result is not None:
            show_notice(console, result)
    print_outcome(console, session)
    console.print(f"状态 State: {session.state.value}")
    if args.json_record and session.closed:
        print(session.record().model_dump_json())
    return 0


# -- interactive mode ------------------------------------------------------------------------
def ask_interactively(console: Console, session: CounterSession) -> None:
    questionnaire = session.guard.pack.questionnaire
    if questionnaire is None:
        console.print("[red]本规则包没有问卷 This pack has no questionnaire[/red]")
        return
    ids = session.questions_to_ask() or tuple(all_questions(session))
    if not ids:
        console.print("问题均已问过 Every question was asked")
        return
    session.ask_questions(list(ids))
    for question in questionnaire.spec.questions:
        if question.id not in ids:
            continue
        console.print(f"[bold]{question.text_zh}[/bold]\n{question.text_en}")
        kind = questionnaire.answer_types[question.id]
        value: object
        if kind is AnswerType.YES_NO:
            value = Confirm.ask("是/否 Yes/No", console=console)
        elif kind is AnswerType.CHOICE:
            value = choose(console, "选择 Choose", list(questionnaire.choices[question.id]))
        elif kind is AnswerType.NUMBER:
            value = IntPrompt.ask("数字 Number", console=console)
        else:
            value = Prompt.ask("回答 Answer", console=console)
        decision = session.record_answer(question.id, value)
        show_decision(console, session, decision)


def run_interactive(console: Console, guard: Guard, args: argparse.Namespace) -> int:
    path: Path = args.event or DEFAULT_EVENT
    session = start_session(guard, json.loads(path.read_text(encoding="utf-8")), args, {})
    save = Saver(args.state)
    save(session)
    console.print(Panel(f"柜面防诈骗问询 Counter anti-fraud session — {session.session_id}"))
    show_decision(console, session, session.decision)
    menu: list[tuple[str, Callable[[], object]]] = [
        ("ask", lambda: ask_interactively(console, session)),
        (
            "observe",
            lambda: session.record_observations(
                Prompt.ask("观察（逗号分隔）Observations, comma-separated", console=console).split(
                    ","
                )
            ),
        ),
        ("notice", lambda: show_notice(console, session.deliver_notice())),
        ("acknowledge", session.acknowledge_notice),
        ("risk_acknowledgement", lambda: show_notice(console, session.sign_risk_acknowledgement())),
        (
            "raise",
            lambda: session.teller_raise(
                choose(console, "级别 Action", [a.value for a in Action]),
                Prompt.ask("理由 Reason", console=console),
            ),
        ),
        ("escalate", lambda: session.escalate(Prompt.ask("理由 Reason", console=console))),
        ("approve", lambda: session.supervisor_approve(supervisor(console), reason(console))),
        ("reject", lambda: session.supervisor_reject(supervisor(console), reason(console))),
        (
            "override",
            lambda: session.supervisor_override(
                supervisor(console),
                choose(console, "级别 Action", [a.value for a in Action]),
                reason(console),
            ),
        ),
        ("outcome", lambda: record_outcome_interactively(console, session)),
        ("close", lambda: show_record(console, session.close())),
    ]
    while not session.closed:
        for number, (name, _) in enumerate(menu, start=1):
            zh, en = STEP_LABELS[name]
            console.print(f"  {number:>2}. {zh} {en}")
        choice = IntPrompt.ask("请选择 Choose", console=console)
        if not 1 <= choice <= len(menu):
            continue
        try:
            result = menu[choice - 1][1]()
        except IllegalStep as error:
            console.print(f"[red]拒绝 Refused:[/red] {error}")
            continue
        save(session)
        if isinstance(result, Decision):
            show_decision(console, session, result)
        console.print(f"当前处置 Effective action: {action_label(session.action)}")
    print_outcome(console, session)
    return 0


def record_outcome_interactively(console: Console, session: CounterSession) -> object:
    """The outcome, then the verdict: was it fraud (yes, no, not known yet)?"""
    outcome = choose(console, "结果 Outcome", [o.value for o in Outcome])
    verdict = choose(console, "是否确认诈骗 Fraud confirmed?", ["yes", "no", "not_known"])
    confirmed = {"yes": True, "no": False}.get(verdict)
    note = Prompt.ask("备注 Note (可空 optional)", default="", console=console)
    return session.record_outcome(outcome, confirmed_fraud=confirmed, note=note)


def show_notice(console: Console, notice: Any) -> None:
    """The whole notice, every line, Chinese then English, for the customer to read and sign."""
    body = f"{notice.text_zh.strip()}\n\n{notice.text_en.strip()}"
    if getattr(notice, "requires_signature", False):
        body += "\n\n客户签字 Customer's signature: ____________"
    # soft_wrap off for the panel: with it on, rich cuts each paragraph at the panel's edge
    panel = Panel(body, title=f"{notice.title_zh} {notice.title_en}", expand=True)
    console.print(panel, soft_wrap=False)


def supervisor(console: Console) -> str:
    return Prompt.ask("主管工号 Supervisor id", console=console)


def reason(console: Console) -> str:
    return Prompt.ask("理由 Reason", console=console)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--pack", type=Path, default=None, help="rule pack (default: baseline)")
    parser.add_argument("--script", type=Path, help="run a scripted session (YAML or JSON)")
    parser.add_argument("--event", type=Path, help="event JSON for the interactive mode")
    parser.add_argument("--state", type=Path, help="save/resume the session in this JSON file")
    parser.add_argument("--audit", type=Path, help="write every step to this audit log")
    parser.add_argument("--stop-after", type=int, help="scripted: stop after step N (a restart)")
    parser.add_argument("--json-record", action="store_true", help="print the closed record")
    args = parser.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8")
    console = Console(highlight=False, soft_wrap=True)
    guard = Guard.from_path(args.pack or default_pack())
    try:
        if args.script is not None:
            return run_script(console, guard, args)
        return run_interactive(console, guard, args)
    except (ScriptError, KeyError, ValueError, OSError) as error:
        console.print(f"[red]错误 Error:[/red] {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
