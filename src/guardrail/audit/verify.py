"""Verification of a sealed log: walk it once, report the first position found wrong.

The rules being checked are in ``guardrail.audit.chain`` (how records, checkpoints and the head
are sealed). Problems are reported in log order: a record rewritten at seq 500 is reported at
500 even when the head was rewritten too, because the head is judged only after the records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from guardrail.audit.chain import (
    checkpoint_mac,
    digests_equal,
    genesis_hash,
    head_mac,
    meta_mac,
    record_mac,
    stored_hash,
)
from guardrail.audit.keys import key_fingerprint
from guardrail.audit.store import AuditReader, Checkpoint, Head, LogMeta, StoredRecord


class ProblemKind(StrEnum):
    """What verification found wrong."""

    NOT_INITIALISED = "not_initialised"  # no meta: not a log, or its identity was removed
    WRONG_KEY = "wrong_key"  # the log was signed with another key
    META_INVALID = "meta_invalid"  # the log's identity row was altered
    HASH_MISMATCH = "hash_mismatch"  # a record's content was modified
    REORDERED = "reordered"  # an intact record stands at the wrong seq
    SEQUENCE_GAP = "sequence_gap"  # records are missing (deleted)
    CHAIN_BROKEN = "chain_broken"  # a record does not follow its predecessor (inserted/replaced)
    BAD_SIGNATURE = "bad_signature"  # a record's MAC is wrong (forged without the key)
    CHECKPOINT_INVALID = "checkpoint_invalid"  # a checkpoint's signature is wrong
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"  # a checkpoint disagrees with the record there
    HEAD_MISSING = "head_missing"
    HEAD_INVALID = "head_invalid"  # the head's signature is wrong
    HEAD_MISMATCH = "head_mismatch"  # the head disagrees with the last record
    TAIL_TRUNCATED = "tail_truncated"  # records after the last present one were removed
    RECORDS_AFTER_HEAD = "records_after_head"  # records appended behind the log's back
    ANCHOR_MISMATCH = "anchor_mismatch"  # disagrees with an externally kept (seq, hash)


@dataclass(frozen=True)
class VerifyProblem:
    kind: ProblemKind
    seq: int | None
    message: str

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind.value, "seq": self.seq, "message": self.message}


@dataclass(frozen=True)
class VerifyReport:
    """The result of verification. ``first_bad_seq`` is the first position found wrong."""

    ok: bool
    records: int
    head_seq: int | None
    checkpoints: int
    signatures_checked: bool
    problem: VerifyProblem | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def first_bad_seq(self) -> int | None:
        return None if self.problem is None else self.problem.seq

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "records": self.records,
            "head_seq": self.head_seq,
            "checkpoints": self.checkpoints,
            "signatures_checked": self.signatures_checked,
            "first_bad_seq": self.first_bad_seq,
            "problem": None if self.problem is None else self.problem.to_dict(),
            "warnings": list(self.warnings),
        }


class _Found(Exception):
    def __init__(self, problem: VerifyProblem) -> None:
        self.problem = problem


def verify_reader(
    reader: AuditReader,
    signing_key: bytes | None,
    *,
    anchors: Sequence[tuple[int, str]] = (),
) -> VerifyReport:
    """Check the whole log in one consistent snapshot; stop at the first problem.

    Without ``signing_key`` only the hash chain and sequence are checked (a warning says so);
    truncation is then detected only against ``anchors``.
    """
    warnings: list[str] = []
    counts = {"records": 0, "checkpoints": 0}
    head: Head | None = None
    try:
        meta = reader.meta()
        if meta is None:
            raise _Found(VerifyProblem(ProblemKind.NOT_INITIALISED, None, "the log has no meta"))
        if signing_key is None:
            warnings.append(
                "no signing key: signatures, checkpoints and the head were not checked; "
                "a rewritten or truncated log may go unnoticed"
            )
        else:
            key_id = key_fingerprint(signing_key)
            if not digests_equal(meta.signing_key_id, key_id):
                raise _Found(
                    VerifyProblem(
                        ProblemKind.WRONG_KEY,
                        None,
                        f"the log was signed with key id {meta.signing_key_id}, "
                        f"the key given has id {key_id}",
                    )
                )
            if not digests_equal(meta.mac, meta_mac(signing_key, meta)):
                raise _Found(
                    VerifyProblem(ProblemKind.META_INVALID, None, "the log's meta was altered")
                )
        head = reader.head()
        checkpoints = {cp.seq: cp for cp in reader.checkpoints()}
        anchor_map = dict(anchors)
        _walk(reader, meta, signing_key, head, checkpoints, anchor_map, counts)
    except _Found as found:
        return VerifyReport(
            False,
            counts["records"],
            None if head is None else head.seq,
            counts["checkpoints"],
            signing_key is not None,
            found.problem,
            tuple(warnings),
        )
    return VerifyReport(
        True,
        counts["records"],
        None if head is None else head.seq,
        counts["checkpoints"],
        signing_key is not None,
        None,
        tuple(warnings),
    )


def _walk(
    reader: AuditReader,
    meta: LogMeta,
    key: bytes | None,
    head: Head | None,
    checkpoints: dict[int, Checkpoint],
    anchors: dict[int, str],
    counts: dict[str, int],
) -> None:
    log_id = meta.log_id
    last_row = reader.last()
    highest = max(
        [0, head.seq if head else 0, last_row.seq if last_row else 0, *checkpoints, *anchors]
    )
    # The head is judged after the records: a chain rewritten from seq 500 on (head included)
    # must be reported at 500. Until then, only a head with a valid signature is believed.
    head_problem: VerifyProblem | None = None
    if key is not None:
        if head is None:
            head_problem = VerifyProblem(
                ProblemKind.HEAD_MISSING, None, "the signed head is missing"
            )
        elif not digests_equal(
            head.mac, head_mac(key, log_id, head.seq, head.record_hash, head.updated_at)
        ):
            head_problem = VerifyProblem(
                ProblemKind.HEAD_INVALID, head.seq, "the head's signature is wrong"
            )
            head = None
    prev = genesis_hash(log_id)
    expected = 1
    for row in reader.iterate():
        if row.seq < expected:
            raise _Found(
                VerifyProblem(
                    ProblemKind.REORDERED,
                    row.seq,
                    f"record {row.seq} appears again after record {expected - 1}",
                )
            )
        if key is not None and head is not None and row.seq > head.seq and expected > head.seq:
            raise _Found(
                VerifyProblem(
                    ProblemKind.RECORDS_AFTER_HEAD,
                    expected,
                    f"records from seq {expected} lie beyond the signed head {head.seq}",
                )
            )
        if row.seq > expected:
            missing = (
                f"record {expected} is missing"
                if row.seq == expected + 1
                else f"records {expected}..{row.seq - 1} are missing"
            )
            raise _Found(VerifyProblem(ProblemKind.SEQUENCE_GAP, expected, missing))
        _check_row(row, prev, key, log_id, highest)
        cp = checkpoints.get(row.seq)
        if cp is not None and key is not None:
            _check_checkpoint(cp, row, key, log_id)
            counts["checkpoints"] += 1
        anchor = anchors.get(row.seq)
        if anchor is not None and not digests_equal(anchor, row.record_hash):
            raise _Found(
                VerifyProblem(
                    ProblemKind.ANCHOR_MISMATCH,
                    row.seq,
                    f"record {row.seq} does not match the external anchor",
                )
            )
        prev = row.record_hash
        counts["records"] += 1
        expected += 1
    last = expected - 1
    _check_tail(last, prev, key, head, checkpoints, anchors)
    if head_problem is not None:
        raise _Found(head_problem)


def _check_row(row: StoredRecord, prev: str, key: bytes | None, log_id: str, highest: int) -> None:
    seq = row.seq
    if not digests_equal(stored_hash(row), row.record_hash):
        for candidate in range(1, highest + 1):
            if candidate != seq and digests_equal(stored_hash(row, candidate), row.record_hash):
                raise _Found(
                    VerifyProblem(
                        ProblemKind.REORDERED,
                        seq,
                        f"record at seq {seq} is intact but belongs at seq {candidate}",
                    )
                )
        raise _Found(
            VerifyProblem(
                ProblemKind.HASH_MISMATCH, seq, f"record {seq} was modified (hash mismatch)"
            )
        )
    if not digests_equal(row.prev_hash, prev):
        raise _Found(
            VerifyProblem(
                ProblemKind.CHAIN_BROKEN,
                seq,
                f"record {seq} does not follow record {seq - 1} (inserted or replaced)",
            )
        )
    if key is not None and not digests_equal(
        row.mac, record_mac(key, log_id, seq, row.record_hash)
    ):
        raise _Found(
            VerifyProblem(
                ProblemKind.BAD_SIGNATURE,
                seq,
                f"record {seq} has a wrong signature (forged without the key)",
            )
        )


def _check_checkpoint(cp: Checkpoint, row: StoredRecord, key: bytes, log_id: str) -> None:
    if not digests_equal(
        cp.mac, checkpoint_mac(key, log_id, cp.seq, cp.record_hash, cp.created_at)
    ):
        raise _Found(
            VerifyProblem(
                ProblemKind.CHECKPOINT_INVALID,
                cp.seq,
                f"checkpoint at seq {cp.seq} has a wrong signature",
            )
        )
    if not digests_equal(cp.record_hash, row.record_hash):
        raise _Found(
            VerifyProblem(
                ProblemKind.CHECKPOINT_MISMATCH,
                cp.seq,
                f"checkpoint at seq {cp.seq} disagrees with the record there",
            )
        )


def _check_tail(
    last: int,
    last_hash: str,
    key: bytes | None,
    head: Head | None,
    checkpoints: dict[int, Checkpoint],
    anchors: dict[int, str],
) -> None:
    beyond = [seq for seq in (*anchors, *(checkpoints if key else ())) if seq > last]
    if key is not None and head is not None:
        beyond.append(head.seq)
    if beyond and max(beyond) > last:
        raise _Found(
            VerifyProblem(
                ProblemKind.TAIL_TRUNCATED,
                last + 1,
                f"the log ends at seq {last} but was signed up to seq {max(beyond)}: "
                f"records from {last + 1} were removed",
            )
        )
    if key is not None and head is not None:
        if head.seq < last:
            raise _Found(
                VerifyProblem(
                    ProblemKind.RECORDS_AFTER_HEAD,
                    head.seq + 1,
                    f"records from seq {head.seq + 1} lie beyond the signed head {head.seq}",
                )
            )
        if not digests_equal(head.record_hash, last_hash):
            raise _Found(
                VerifyProblem(
                    ProblemKind.HEAD_MISMATCH,
                    last,
                    f"the signed head disagrees with record {last}",
                )
            )
