"""Replay a labelled JSONL stream through a ``Guard`` and measure the pack.

Each line is ``{"label": "fraud"|"legitimate", "typology": ..., "event": {...}}``: the one line
format of ``guardrail.model.stream`` that ``guardrail simulate`` writes (``scenario``,
``executed_history_hint`` and ``when_asked`` are optional). Every
counter request is screened; then, as at a real counter, it is recorded as executed history
unless the counter stopped it:

- a request whose action is below ``intercept`` is carried out and recorded;
- a *legitimate* request is recorded whatever the action: a genuine customer who is questioned
  or even refused explains, comes back and is paid, and legitimate history must not depend on
  how much friction the pack causes;
- an intercepted (or reported) *fraud* request is not paid out and is not recorded;
- a record with ``executed_history_hint == "always"`` is background history from another
  channel (a pension credit, the inbound credit of a mule account): it is recorded without
  being screened and does not count in recall or friction.

The report counts decisions per action, hits per rule (with how many of them were on fraud),
interception recall on labelled fraud (action >= intercept, and >= review), the friction rate on
legitimate traffic (action >= inquire), recall per typology and throughput -- each twice: at
the first screening, and *after answers*. A line may carry ``when_asked``: what the customer
answers, shows and who confirms when questioned (``guardrail simulate`` writes it: a victim as
coached, sometimes truthfully; a legitimate customer truthfully, sometimes with a document or
the family). A request screened at ``inquire`` or above is screened again with it, and the
action after answers is what a counter session would stand at: the second screening, never
below an earlier hit that answers cannot withdraw (rules tagged ``answers``) unless that rule
was cleared. The action after answers decides whether a fraud request is paid out.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import ValidationError

from guardrail.errors import GuardrailError
from guardrail.guard import MAX_EVENT_BYTES, Guard
from guardrail.model.decision import Action, Decision
from guardrail.model.event import Event
from guardrail.model.stream import StreamLine, WhenAsked

INTERCEPT = Action.INTERCEPT
REVIEW = Action.REVIEW
FRICTION = Action.INQUIRE
BadLinePolicy = Literal["stop", "skip"]


class ReplayError(GuardrailError, ValueError):
    """A line of the stream is malformed; the message names the file and line."""

    def __init__(self, source: str, line_no: int, message: str) -> None:
        self.source = source
        self.line_no = line_no
        self.problem = message
        super().__init__(f"{source}:{line_no}: {message}")


@dataclass(frozen=True, slots=True)
class ReplayRecord:
    """One validated line of the stream and its line number."""

    line_no: int
    line: StreamLine

    @property
    def label(self) -> str:
        return self.line.label

    @property
    def typology(self) -> str | None:
        return self.line.typology

    @property
    def scenario(self) -> str | None:
        return self.line.scenario

    @property
    def background(self) -> bool:
        return self.line.background

    @property
    def event(self) -> Event:
        return self.line.event

    @property
    def when_asked(self) -> WhenAsked | None:
        return self.line.when_asked


MAX_LINE_BYTES = MAX_EVENT_BYTES + 4096


def parse_line(text: str | bytes, line_no: int, source: str = "<stream>") -> ReplayRecord:
    """Validate one JSONL line; ``ReplayError`` says exactly what is wrong and where."""
    if len(text) > MAX_LINE_BYTES:
        raise ReplayError(source, line_no, f"line longer than {MAX_LINE_BYTES} bytes")
    try:
        line = StreamLine.model_validate_json(text)  # one parse, in pydantic's JSON mode
    except ValidationError as error:
        raise ReplayError(source, line_no, _problems(error)) from None
    return ReplayRecord(line_no, line)


def _problems(error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False):
        if item["type"] == "json_invalid":
            return f"not JSON: {item['msg'].removeprefix('Invalid JSON: ')}"
        if item["type"] == "model_type" and not item["loc"]:
            return "expected a JSON object"
        path = ".".join(str(part) for part in item["loc"]) or "(line)"
        message = "unknown field" if item["type"] == "extra_forbidden" else item["msg"]
        if item["type"] == "missing" and path == "event":
            message = "missing 'event' object"
        problems.append(f"{path}: {message}")
    return "; ".join(problems)


@dataclass(slots=True)
class RuleHits:
    hits: int = 0
    share: float = 0.0  # of screened events
    on_fraud: int = 0
    on_legitimate: int = 0


@dataclass(slots=True)
class GroupOutcome:
    """Screened requests of one typology (or one legitimate scenario)."""

    events: int = 0
    at_least_intercept: int = 0
    at_least_review: int = 0
    at_least_inquire: int = 0
    rate_intercept: float = 0.0
    rate_review: float = 0.0
    rate_inquire: float = 0.0


@dataclass(slots=True)
class ReplayReport:
    """What a replay measured. ``to_dict()`` is JSON-able; ``render()`` is for people."""

    pack: str
    pack_version: str
    pack_hash: str
    backend: str
    events: int = 0  # valid lines read
    screened: int = 0  # counter requests screened
    background: int = 0  # background history recorded without screening
    recorded: int = 0  # events recorded as executed history (background included)
    bad_lines: int = 0
    first_bad_line: str | None = None
    failures: int = 0  # decisions that carry a screening failure
    actions: dict[str, int] = field(default_factory=dict)
    rules: dict[str, RuleHits] = field(default_factory=dict)
    fraud_events: int = 0
    legitimate_events: int = 0
    intercepted_fraud: int = 0
    reviewed_fraud: int = 0
    inquired_legitimate: int = 0
    recall_intercept: float = 0.0
    recall_review: float = 0.0
    friction_rate: float = 0.0
    typologies: dict[str, GroupOutcome] = field(default_factory=dict)
    legitimate_scenarios: dict[str, GroupOutcome] = field(default_factory=dict)
    asked: int = 0  # requests screened again with the customer's answers
    intercepted_fraud_after_answers: int = 0
    reviewed_fraud_after_answers: int = 0
    inquired_legitimate_after_answers: int = 0
    recall_intercept_after_answers: float = 0.0
    recall_review_after_answers: float = 0.0
    friction_rate_after_answers: float = 0.0
    typologies_after_answers: dict[str, GroupOutcome] = field(default_factory=dict)
    legitimate_scenarios_after_answers: dict[str, GroupOutcome] = field(default_factory=dict)
    seconds: float = 0.0
    events_per_second: float = 0.0
    screen_p50_us: int | None = None  # None: not measured (bulk engines screen no event alone)
    screen_p99_us: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def render(self) -> str:
        """A plain-text report for people."""
        skipped = f", bad lines skipped {self.bad_lines:,}" if self.bad_lines else ""
        lines = [
            f"pack {self.pack} {self.pack_version} [{self.pack_hash[:12]}]  backend {self.backend}",
            f"events {self.events:,}: screened {self.screened:,}, background {self.background:,}, "
            f"recorded as executed {self.recorded:,}{skipped}",
        ]
        if self.failures:
            lines.append(f"SCREENING FAILURES: {self.failures:,} decisions carry a failure")
        lines += ["", "decisions per action:"]
        for action in Action:
            count = self.actions.get(action.value, 0)
            lines.append(f"  {action.value:<10} {count:>9,}  {_pct(count, self.screened):>7}")
        fraud, legit = self.fraud_events, self.legitimate_events
        measures = (
            ("interception recall on fraud (>= intercept)", self.intercepted_fraud, fraud),
            ("recall on fraud at >= review", self.reviewed_fraud, fraud),
            ("friction on legitimate (>= inquire)", self.inquired_legitimate, legit),
            (
                "after answers: recall (>= intercept)",
                self.intercepted_fraud_after_answers,
                fraud,
            ),
            ("after answers: recall (>= review)", self.reviewed_fraud_after_answers, fraud),
            (
                "after answers: friction (>= inquire)",
                self.inquired_legitimate_after_answers,
                legit,
            ),
        )
        lines.append("")
        for title, part, whole in measures:
            lines.append(f"{title:<45} {_pct(part, whole):>7}  ({part:,} of {whole:,})")
        lines.append(f"screened again with the customer's answers: {self.asked:,}")
        if self.typologies:
            lines += [
                "",
                f"  {'fraud typology':<36} {'events':>7} {'>=intercept':>12} {'>=review':>9}"
                f" {'after answers >=intercept':>26}",
            ]
            after = self.typologies_after_answers
            for name, group in sorted(self.typologies.items()):
                intercept = _pct(group.at_least_intercept, group.events)
                review = _pct(group.at_least_review, group.events)
                later = after.get(name, GroupOutcome())
                then = _pct(later.at_least_intercept, later.events)
                lines.append(
                    f"  {name:<36} {group.events:>7,} {intercept:>12} {review:>9} {then:>26}"
                )
        if self.legitimate_scenarios:
            lines += [
                "",
                f"  {'legitimate scenario':<36} {'events':>7} {'>=inquire':>12} "
                f"{'>=intercept':>12} {'after answers >=inquire':>24}",
            ]
            legit_after = self.legitimate_scenarios_after_answers
            by_friction = sorted(
                self.legitimate_scenarios.items(), key=lambda item: (-item[1].rate_inquire, item[0])
            )
            for name, group in by_friction:
                inquire = _pct(group.at_least_inquire, group.events)
                intercept = _pct(group.at_least_intercept, group.events)
                later = legit_after.get(name, GroupOutcome())
                then = _pct(later.at_least_inquire, later.events)
                lines.append(
                    f"  {name:<36} {group.events:>7,} {inquire:>12} {intercept:>12} {then:>24}"
                )
        width = max([40, *(len(rule_id) for rule_id in self.rules)])
        lines += [
            "",
            f"  {'rule':<{width}} {'hits':>8} {'share':>8} {'on fraud':>9} {'on legit':>9}",
        ]
        for rule_id, rule in sorted(self.rules.items(), key=lambda item: (-item[1].hits, item[0])):
            counts = (
                f"{rule.hits:>8,} {rule.share:>8.2%} {rule.on_fraud:>9,} {rule.on_legitimate:>9,}"
            )
            lines.append(f"  {rule_id:<{width}} {counts}")
        lines += [
            "",
            f"throughput {self.events_per_second:,.0f} events/s ({self.seconds:.2f} s); "
            + (
                "screening latency not measured (events screened in bulk)"
                if self.screen_p50_us is None
                else f"screening p50 {self.screen_p50_us} µs, p99 {self.screen_p99_us} µs"
            ),
        ]
        return "\n".join(lines)


def _pct(part: int, whole: int) -> str:
    return "n/a" if whole == 0 else f"{part / whole:.2%}"


def _ratio(part: int, whole: int) -> float:
    return 0.0 if whole == 0 else part / whole


def read_records(
    lines: Iterable[str],
    *,
    source: str = "<stream>",
    on_bad_line: BadLinePolicy = "stop",
    bad: list[ReplayError] | None = None,
) -> Iterator[ReplayRecord]:
    """Validated records of a JSONL stream. Blank lines are ignored. With ``on_bad_line="skip"``
    a malformed line is appended to ``bad`` and skipped; with ``"stop"`` it raises."""
    for line_no, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            yield parse_line(text, line_no, source)
        except ReplayError as error:
            if on_bad_line == "stop":
                raise
            if bad is not None:
                bad.append(error)


class _Tally:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.events: Counter[str] = Counter()

    def add(self, key: str, action: Action) -> None:
        self.events[key] += 1
        if action >= INTERCEPT:
            self.counts[key, "intercept"] += 1
        if action >= REVIEW:
            self.counts[key, "review"] += 1
        if action >= FRICTION:
            self.counts[key, "inquire"] += 1

    def outcomes(self) -> dict[str, GroupOutcome]:
        result = {}
        for key in sorted(self.events):
            events = self.events[key]
            intercept = self.counts[key, "intercept"]
            review = self.counts[key, "review"]
            inquire = self.counts[key, "inquire"]
            result[key] = GroupOutcome(
                events,
                intercept,
                review,
                inquire,
                _ratio(intercept, events),
                _ratio(review, events),
                _ratio(inquire, events),
            )
        return result


class Replayer:
    """Screens records one by one through ``guard`` and keeps the tallies."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.actions: Counter[Action] = Counter()
        self.rule_hits: Counter[str] = Counter()
        self.rule_fraud: Counter[str] = Counter()
        self.typologies = _Tally()
        self.scenarios = _Tally()
        self.typologies_after = _Tally()
        self.scenarios_after = _Tally()
        self.asked = 0
        self.events = 0
        self.screened = 0
        self.background = 0
        self.recorded = 0
        self.failures = 0
        self.fraud = 0
        self.legitimate = 0
        self.latencies: list[int] = []
        self.last_decision: Decision | None = None  # of the last screened record

    def feed(self, record: ReplayRecord) -> Action | None:
        """Screen (or just record) one record; returns the action, None for background."""
        self.events += 1
        self.last_decision = None
        guard = self.guard
        if record.background:
            self.background += 1
            guard.record_executed(record.event)
            self.recorded += 1
            return None
        decision = guard.screen(record.event)
        self.last_decision = decision
        action = decision.action
        self.screened += 1
        self.actions[action] += 1
        self.latencies.append(decision.elapsed_us)
        if decision.failures:
            self.failures += 1
        fraud = record.label == "fraud"
        for rule_id in decision.rule_ids:
            self.rule_hits[rule_id] += 1
            if fraud:
                self.rule_fraud[rule_id] += 1
        final, executed = action, record.event
        if action >= FRICTION and record.when_asked is not None:
            executed = record.when_asked.apply(record.event)
            final = _after_answers(decision, guard.screen(executed))
            self.asked += 1
        if fraud:
            self.fraud += 1
            self.typologies.add(record.typology or "(unspecified)", action)
            self.typologies_after.add(record.typology or "(unspecified)", final)
        else:
            self.legitimate += 1
            self.scenarios.add(record.scenario or "(unspecified)", action)
            self.scenarios_after.add(record.scenario or "(unspecified)", final)
        if not fraud or final < INTERCEPT:
            guard.record_executed(executed)
            self.recorded += 1
        return action

    def report(self, seconds: float, bad: list[ReplayError] | None = None) -> ReplayReport:
        pack = self.guard.pack.ref
        typologies = self.typologies.outcomes()
        intercepted = sum(group.at_least_intercept for group in typologies.values())
        reviewed = sum(group.at_least_review for group in typologies.values())
        scenarios = self.scenarios.outcomes()
        inquired = sum(group.at_least_inquire for group in scenarios.values())
        typologies_after = self.typologies_after.outcomes()
        intercepted_after = sum(g.at_least_intercept for g in typologies_after.values())
        reviewed_after = sum(g.at_least_review for g in typologies_after.values())
        scenarios_after = self.scenarios_after.outcomes()
        inquired_after = sum(g.at_least_inquire for g in scenarios_after.values())
        latencies = sorted(self.latencies)
        rules = {
            rule_id: RuleHits(
                hits,
                _ratio(hits, self.screened),
                self.rule_fraud[rule_id],
                hits - self.rule_fraud[rule_id],
            )
            for rule_id, hits in sorted(self.rule_hits.items())
        }
        bad = bad or []
        return ReplayReport(
            pack=pack.name,
            pack_version=pack.version,
            pack_hash=pack.content_hash,
            backend=self.guard.backend.name,
            events=self.events,
            screened=self.screened,
            background=self.background,
            recorded=self.recorded,
            bad_lines=len(bad),
            first_bad_line=str(bad[0]) if bad else None,
            failures=self.failures,
            actions={action.value: self.actions[action] for action in Action},
            rules=rules,
            fraud_events=self.fraud,
            legitimate_events=self.legitimate,
            intercepted_fraud=intercepted,
            reviewed_fraud=reviewed,
            inquired_legitimate=inquired,
            recall_intercept=_ratio(intercepted, self.fraud),
            recall_review=_ratio(reviewed, self.fraud),
            friction_rate=_ratio(inquired, self.legitimate),
            typologies=typologies,
            legitimate_scenarios=scenarios,
            asked=self.asked,
            intercepted_fraud_after_answers=intercepted_after,
            reviewed_fraud_after_answers=reviewed_after,
            inquired_legitimate_after_answers=inquired_after,
            recall_intercept_after_answers=_ratio(intercepted_after, self.fraud),
            recall_review_after_answers=_ratio(reviewed_after, self.fraud),
            friction_rate_after_answers=_ratio(inquired_after, self.legitimate),
            typologies_after_answers=typologies_after,
            legitimate_scenarios_after_answers=scenarios_after,
            seconds=round(seconds, 3),
            events_per_second=round(self.events / seconds, 1) if seconds > 0 else 0.0,
            screen_p50_us=latencies[len(latencies) // 2] if latencies else None,
            screen_p99_us=latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)]
            if latencies
            else None,
        )


_ANSWER_DRIVEN = frozenset({"answers"})  # hits later answers may withdraw (as in a session)


def _after_answers(first: Decision, second: Decision) -> Action:
    """Where a counter session stands after the answers: the second screening, and never below
    a first-screening hit that answers cannot withdraw, unless the second cleared that rule."""
    cleared = {c.rule_id for c in second.cleared}
    floor = max(
        (
            hit.action
            for hit in first.hits
            if hit.rule_id not in cleared and not _ANSWER_DRIVEN.intersection(hit.tags)
        ),
        default=Action.PROCEED,
    )
    return max(second.action, floor)


def replay(
    guard: Guard,
    lines: Iterable[str],
    *,
    source: str = "<stream>",
    on_bad_line: BadLinePolicy = "stop",
    limit: int | None = None,
    progress: _Progress | None = None,
) -> ReplayReport:
    """Replay ``lines`` (JSONL text lines) through ``guard`` and report.

    Raises ``ReplayError`` naming the line for a malformed line unless ``on_bad_line="skip"``,
    in which case bad lines are counted in the report. ``limit`` stops after that many events.
    """
    replayer = Replayer(guard)
    bad: list[ReplayError] = []
    started = time.perf_counter()
    count = 0
    for record in read_records(lines, source=source, on_bad_line=on_bad_line, bad=bad):
        if limit is not None and count >= limit:
            break
        replayer.feed(record)
        count += 1
        if progress is not None and count % 500 == 0:
            progress.advance(count)
    if progress is not None:
        progress.advance(count)
    return replayer.report(time.perf_counter() - started, bad)


class _Progress:
    """A ``rich.progress`` bar on stderr, fed with the number of events done so far."""

    def __init__(self, total: int | None, stream: IO[str] | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console(file=stream or sys.stderr)
        self._progress = Progress(
            TextColumn("replay"),
            BarColumn(),
            TaskProgressColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task("replay", total=total)

    def __enter__(self) -> _Progress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def advance(self, done: int) -> None:
        self._progress.update(self._task, completed=done)


def count_lines(path: Path) -> int:
    """Non-blank lines of a file (a cheap first pass, for the progress bar's total)."""
    count = 0
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            count += chunk.count(b"\n")
    return count


def replay_file(
    guard: Guard,
    path: str | Path,
    *,
    on_bad_line: BadLinePolicy = "stop",
    limit: int | None = None,
    show_progress: bool = False,
) -> ReplayReport:
    """Replay a JSONL file (``"-"`` for stdin), optionally with a progress bar on stderr."""
    if str(path) == "-":
        source, handle = "<stdin>", sys.stdin
        total = limit
        return _run(guard, handle, source, on_bad_line, limit, show_progress, total)
    file = Path(path)
    total = count_lines(file) if show_progress else None
    if total is not None and limit is not None:
        total = min(total, limit)
    with file.open(encoding="utf-8") as handle:
        return _run(guard, handle, str(file), on_bad_line, limit, show_progress, total)


def _run(
    guard: Guard,
    handle: IO[str],
    source: str,
    on_bad_line: BadLinePolicy,
    limit: int | None,
    show_progress: bool,
    total: int | None,
) -> ReplayReport:
    if not show_progress:
        return replay(guard, handle, source=source, on_bad_line=on_bad_line, limit=limit)
    with _Progress(total) as bar:
        return replay(
            guard, handle, source=source, on_bad_line=on_bad_line, limit=limit, progress=bar
        )
