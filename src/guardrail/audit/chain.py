"""Hash chaining and signatures: how records, checkpoints and the head are sealed.

* Every record's hash commits to its seq, the previous record's hash, its time, kind, case id
  and payload bytes (SHA-256; anyone can recompute it, no key needed).
* Every record also carries a MAC (HMAC-SHA256 with the signing key) over the log id, its seq
  and its hash, so a record forged or rewritten without the key is caught at its own seq.
* Every ``checkpoint_every`` records a signed checkpoint pins (seq, hash): compact anchors that
  can be copied off the machine.
* A signed head, rewritten in the same transaction as every append, names the last
  acknowledged record; a tail cut off after it (even after the last checkpoint) is detected.

Checking a log against these rules is ``guardrail.audit.verify``. See ``docs/audit.md`` for
what this does and does not guarantee.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass

from guardrail.audit.store import Checkpoint, Head, LogMeta, StoredRecord

FORMAT_VERSION = 1
_DOMAIN = "guardrail.audit/1"


def utc_timestamp(moment: dt.datetime) -> str:
    """The canonical stored form of a time: UTC with microseconds, ``...Z``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("recorded_at must carry a time zone offset")
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def genesis_hash(log_id: str) -> str:
    """The ``prev_hash`` of record 1: ties the chain to this log's id."""
    return hashlib.sha256(f"{_DOMAIN}\ngenesis\n{log_id}".encode()).hexdigest()


def _bytes(text: str) -> bytes:
    # surrogateescape round-trips bytes that were not valid UTF-8 in a tampered file
    return text.encode("utf-8", "surrogateescape")


def record_hash(
    seq: int, prev_hash: str, recorded_at: str, kind: str, case_id: str, payload: str
) -> str:
    """SHA-256 over an unambiguous header (a JSON array) followed by the payload bytes."""
    header = json.dumps([_DOMAIN, seq, prev_hash, recorded_at, kind, case_id], ensure_ascii=True)
    digest = hashlib.sha256(_bytes(header))
    digest.update(b"\n")
    digest.update(_bytes(payload))
    return digest.hexdigest()


def stored_hash(row: StoredRecord, seq: int | None = None) -> str:
    """Recompute a stored row's hash (optionally as if it stood at ``seq``)."""
    return record_hash(
        row.seq if seq is None else seq,
        row.prev_hash,
        row.recorded_at,
        row.kind,
        row.case_id,
        row.payload,
    )


def _mac(key: bytes, *parts: object) -> str:
    message = "\n".join([_DOMAIN, *(str(part) for part in parts)])
    return hmac.new(key, _bytes(message), hashlib.sha256).hexdigest()


def record_mac(key: bytes, log_id: str, seq: int, hash_: str) -> str:
    return _mac(key, "record", log_id, seq, hash_)


def checkpoint_mac(key: bytes, log_id: str, seq: int, hash_: str, created_at: str) -> str:
    return _mac(key, "checkpoint", log_id, seq, hash_, created_at)


def head_mac(key: bytes, log_id: str, seq: int, hash_: str, updated_at: str) -> str:
    return _mac(key, "head", log_id, seq, hash_, updated_at)


def meta_mac(key: bytes, meta: LogMeta) -> str:
    return _mac(
        key,
        "meta",
        meta.log_id,
        meta.format_version,
        meta.created_at,
        meta.signing_key_id,
        meta.masking_key_id,
        meta.checkpoint_every,
    )


def digests_equal(a: str, b: str) -> bool:
    """Constant-time comparison of two hex digests or MACs."""
    return hmac.compare_digest(_bytes(a), _bytes(b))


@dataclass(frozen=True, slots=True)
class Unsealed:
    """A payload waiting for its place in the chain."""

    kind: str
    case_id: str
    payload: str
    recorded_at: str


@dataclass(frozen=True)
class Sealed:
    records: list[StoredRecord]
    head: Head
    checkpoints: list[Checkpoint]


class Sealer:
    """Chains and signs batches for one log."""

    def __init__(self, key: bytes, meta: LogMeta) -> None:
        self._key = key
        self.meta = meta

    def empty_head(self, updated_at: str) -> Head:
        genesis = genesis_hash(self.meta.log_id)
        mac = head_mac(self._key, self.meta.log_id, 0, genesis, updated_at)
        return Head(0, genesis, updated_at, mac)

    def seal(self, batch: Sequence[Unsealed], after: Head, now: str) -> Sealed:
        log_id, every = self.meta.log_id, self.meta.checkpoint_every
        prev, seq = after.record_hash, after.seq
        records: list[StoredRecord] = []
        checkpoints: list[Checkpoint] = []
        for item in batch:
            seq += 1
            hash_ = record_hash(seq, prev, item.recorded_at, item.kind, item.case_id, item.payload)
            mac = record_mac(self._key, log_id, seq, hash_)
            records.append(
                StoredRecord(
                    seq, item.recorded_at, item.kind, item.case_id, prev, hash_, mac, item.payload
                )
            )
            if every > 0 and seq % every == 0:
                checkpoints.append(
                    Checkpoint(seq, hash_, now, checkpoint_mac(self._key, log_id, seq, hash_, now))
                )
            prev = hash_
        head = Head(seq, prev, now, head_mac(self._key, log_id, seq, prev, now))
        return Sealed(records, head, checkpoints)
