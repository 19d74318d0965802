"""Every kind of tampering makes verify fail, at the right seq, with the right kind."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from audit_factory import fill, make_decision, make_event

from guardrail.audit import AuditKeys, AuditLog, ProblemKind, verify_log
from guardrail.audit.chain import record_hash
from guardrail.audit.cli import verify_main
from guardrail.model import Action

N = 10


@pytest.fixture
def written(log_path: Path, keys: AuditKeys) -> Path:
    with AuditLog.open(log_path, keys=keys, checkpoint_every=4) as log:
        assert fill(log, N) == list(range(1, N + 1))
        assert log.verify().ok
    return log_path


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """Edit the file behind the library's back, as an attacker with the file would."""
    conn = sqlite3.connect(path, isolation_level=None)
    for trigger in ("records_no_update", "records_no_delete", "checkpoints_no_update"):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    conn.execute("DROP TRIGGER IF EXISTS checkpoints_no_delete")
    try:
        yield conn
    finally:
        conn.close()


def check(path: Path, kind: ProblemKind, seq: int | None, key: bytes | None = b"") -> None:
    signing = AuditKeys.from_secret(b"test-secret-key-0123456789abcdef").signing
    report = verify_log(path, signing if key == b"" else key)
    assert not report.ok
    assert report.problem is not None
    assert report.problem.kind is kind, report.problem
    assert report.first_bad_seq == seq, report.problem


def test_untouched_log_verifies(written: Path) -> None:
    signing = AuditKeys.from_secret(b"test-secret-key-0123456789abcdef").signing
    report = verify_log(written, signing)
    assert report.ok and report.records == N and report.head_seq == N
    assert report.checkpoints == N // 4


def test_the_library_refuses_update_and_delete(written: Path) -> None:
    conn = sqlite3.connect(written)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM records WHERE seq = 3")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE records SET payload = 'x' WHERE seq = 3")
    conn.close()


@pytest.mark.parametrize("seq", [1, 5, N])
def test_flipped_byte_in_payload(written: Path, seq: int) -> None:
    with raw(written) as conn:
        (payload,) = conn.execute("SELECT payload FROM records WHERE seq = ?", (seq,)).fetchone()
        position = payload.index("50000.00")
        flipped = payload[:position] + "6" + payload[position + 1 :]
        conn.execute("UPDATE records SET payload = ? WHERE seq = ?", (flipped, seq))
    check(written, ProblemKind.HASH_MISMATCH, seq)
    check(written, ProblemKind.HASH_MISMATCH, seq, key=None)


def test_flipped_byte_in_the_file_itself(written: Path) -> None:
    data = bytearray(written.read_bytes())
    marker = b'"event_id":"E000006"'  # the payload of seq 7
    position = data.index(marker) + len(marker) - 2
    data[position] ^= 0x01  # '6' -> '7': still valid UTF-8, still a valid page
    written.write_bytes(bytes(data))
    check(written, ProblemKind.HASH_MISMATCH, 7)


@pytest.mark.parametrize("column", ["recorded_at", "kind", "case_id", "prev_hash", "record_hash"])
def test_edited_envelope_column(written: Path, column: str) -> None:
    with raw(written) as conn:
        conn.execute(f"UPDATE records SET {column} = {column} || 'x' WHERE seq = 4")
    check(written, ProblemKind.HASH_MISMATCH, 4)


@pytest.mark.parametrize("seq", [1, 6, N - 1])
def test_deleted_row(written: Path, seq: int) -> None:
    with raw(written) as conn:
        conn.execute("DELETE FROM records WHERE seq = ?", (seq,))
    check(written, ProblemKind.SEQUENCE_GAP, seq)
    check(written, ProblemKind.SEQUENCE_GAP, seq, key=None)


def _shift_up_from(conn: sqlite3.Connection, seq: int) -> None:
    conn.execute("UPDATE records SET seq = -(seq + 1) WHERE seq >= ?", (seq,))
    conn.execute("UPDATE records SET seq = -seq WHERE seq < 0")


def test_inserted_copy_of_another_row(written: Path) -> None:
    with raw(written) as conn:
        _shift_up_from(conn, 5)
        conn.execute(
            "INSERT INTO records SELECT 5, recorded_at, kind, case_id, prev_hash, record_hash,"
            " mac, payload FROM records WHERE seq = 2"
        )
    check(written, ProblemKind.REORDERED, 5)


def test_inserted_forged_row_with_a_correct_chain_hash(written: Path) -> None:
    """The forger knows the hash function but not the key: caught at the forged row."""
    with raw(written) as conn:
        _shift_up_from(conn, 5)
        prev = conn.execute("SELECT record_hash FROM records WHERE seq = 4").fetchone()[0]
        row = conn.execute(
            "SELECT recorded_at, kind, case_id, payload FROM records WHERE seq = 2"
        ).fetchone()
        payload = row[3].replace("50000.00", "10.00")
        forged = record_hash(5, prev, row[0], row[1], row[2], payload)
        conn.execute(
            "INSERT INTO records VALUES (5, ?, ?, ?, ?, ?, ?, ?)",
            (row[0], row[1], row[2], prev, forged, "0" * 64, payload),
        )
    check(written, ProblemKind.BAD_SIGNATURE, 5)


def test_inserted_row_at_the_tail(written: Path) -> None:
    with raw(written) as conn:
        conn.execute(
            "INSERT INTO records SELECT ?, recorded_at, kind, case_id, prev_hash, record_hash,"
            " mac, payload FROM records WHERE seq = 3",
            (N + 1,),
        )
    check(written, ProblemKind.RECORDS_AFTER_HEAD, N + 1)


def test_swapped_rows(written: Path) -> None:
    columns = "recorded_at, kind, case_id, prev_hash, record_hash, mac, payload"
    with raw(written) as conn:
        a = conn.execute(f"SELECT {columns} FROM records WHERE seq = 3").fetchone()
        b = conn.execute(f"SELECT {columns} FROM records WHERE seq = 7").fetchone()
        sets = ", ".join(f"{c.strip()} = ?" for c in columns.split(","))
        conn.execute(f"UPDATE records SET {sets} WHERE seq = 3", b)
        conn.execute(f"UPDATE records SET {sets} WHERE seq = 7", a)
    check(written, ProblemKind.REORDERED, 3)
    check(written, ProblemKind.REORDERED, 3, key=None)


def test_swapped_seq_numbers(written: Path) -> None:
    with raw(written) as conn:
        conn.execute("UPDATE records SET seq = -1 WHERE seq = 8")
        conn.execute("UPDATE records SET seq = 8 WHERE seq = 9")
        conn.execute("UPDATE records SET seq = 9 WHERE seq = -1")
    check(written, ProblemKind.REORDERED, 8)


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_truncated_tail_after_the_last_checkpoint(written: Path, cut: int) -> None:
    # checkpoints are at 4 and 8; cutting 1..2 records leaves them intact: the head catches it
    with raw(written) as conn:
        conn.execute("DELETE FROM records WHERE seq > ?", (N - cut,))
    check(written, ProblemKind.TAIL_TRUNCATED, N - cut + 1)


def test_truncated_tail_and_head_row_removed(written: Path) -> None:
    with raw(written) as conn:
        conn.execute("DELETE FROM records WHERE seq > 9")  # after the last checkpoint (8)
        conn.execute("DELETE FROM head")
    check(written, ProblemKind.HEAD_MISSING, None)
    with raw(written) as conn:
        conn.execute("DELETE FROM records WHERE seq > 6")  # before it: the gap comes first
    check(written, ProblemKind.TAIL_TRUNCATED, 7)


def test_truncated_tail_and_forged_head(written: Path) -> None:
    with raw(written) as conn:
        conn.execute("DELETE FROM records WHERE seq > 9")
        new = conn.execute("SELECT record_hash FROM records WHERE seq = 9").fetchone()[0]
        conn.execute("UPDATE head SET seq = 9, record_hash = ?", (new,))
    check(written, ProblemKind.HEAD_INVALID, 9)
    with raw(written) as conn:
        conn.execute("DELETE FROM records WHERE seq > 6")
        new = conn.execute("SELECT record_hash FROM records WHERE seq = 6").fetchone()[0]
        conn.execute("UPDATE head SET seq = 6, record_hash = ?", (new,))
    check(written, ProblemKind.TAIL_TRUNCATED, 7)  # checkpoint 8 was signed


def test_chain_rewritten_from_a_record_on_is_reported_there(written: Path) -> None:
    """Rewriting record 5 and everything after it, head included, without the key: the
    report names 5 (the head, checked first, used to be reported instead)."""
    columns = "recorded_at, kind, case_id, payload"
    with raw(written) as conn:
        prev = conn.execute("SELECT record_hash FROM records WHERE seq = 4").fetchone()[0]
        for seq in range(5, N + 1):
            at, kind, case_id, payload = conn.execute(
                f"SELECT {columns} FROM records WHERE seq = ?", (seq,)
            ).fetchone()
            payload = payload.replace("50000.00", "10.00")
            new = record_hash(seq, prev, at, kind, case_id, payload)
            conn.execute(
                "UPDATE records SET prev_hash = ?, record_hash = ?, payload = ? WHERE seq = ?",
                (prev, new, payload, seq),
            )
            prev = new
        conn.execute("UPDATE head SET record_hash = ?", (prev,))
    check(written, ProblemKind.BAD_SIGNATURE, 5)


def test_truncated_tail_without_key_is_caught_by_an_anchor(written: Path) -> None:
    signing = AuditKeys.from_secret(b"test-secret-key-0123456789abcdef").signing
    with AuditLog.open(
        written, keys=AuditKeys.from_secret(b"test-secret-key-0123456789abcdef")
    ) as log:
        head = log.head()
    assert head is not None
    with raw(written) as conn:
        conn.execute("DELETE FROM records WHERE seq > 7")
    report = verify_log(written, None, anchors=[(head.seq, head.record_hash)])
    assert not report.ok and report.problem is not None
    assert report.problem.kind is ProblemKind.TAIL_TRUNCATED and report.first_bad_seq == 8
    assert not verify_log(written, signing).ok


def test_tampered_checkpoint(written: Path) -> None:
    with raw(written) as conn:
        conn.execute("UPDATE checkpoints SET created_at = 'x' WHERE seq = 8")
    check(written, ProblemKind.CHECKPOINT_INVALID, 8)


def test_wrong_key(written: Path) -> None:
    check(written, ProblemKind.WRONG_KEY, None, key=b"another-key-another-key-another-key")


def test_tampered_meta(written: Path) -> None:
    with raw(written) as conn:
        conn.execute("UPDATE meta SET checkpoint_every = 1000")
    check(written, ProblemKind.META_INVALID, None)


def test_append_after_reopen_continues_the_chain(written: Path, keys: AuditKeys) -> None:
    with AuditLog.open(written, keys=keys) as log:
        event = make_event(99)
        assert log.log_decision(event, make_decision(event, Action.PROCEED)) == N + 1
        assert log.verify().ok


def test_reopen_with_another_key_is_refused(written: Path) -> None:
    with pytest.raises(ValueError, match="signed with key id"):
        AuditLog.open(written, keys=AuditKeys.from_secret(b"z" * 32))


# -- the command line ---------------------------------------------------------------------


def test_cli_exit_codes(
    written: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GUARDRAIL_AUDIT_KEY", "test-secret-key-0123456789abcdef")
    assert verify_main([str(written)]) == 0
    assert "OK, 10 records" in capsys.readouterr().out
    with raw(written) as conn:
        conn.execute("DELETE FROM records WHERE seq = 6")
    assert verify_main([str(written)]) == 1
    assert "FAILED at seq 6: sequence_gap" in capsys.readouterr().out
    assert verify_main([str(written), "--json"]) == 1
    assert '"first_bad_seq": 6' in capsys.readouterr().out


def test_cli_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GUARDRAIL_AUDIT_KEY", raising=False)
    assert verify_main([str(tmp_path / "missing.db"), "--no-key"]) == 2
    assert "no audit log at this path" in capsys.readouterr().err
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 100)
    assert verify_main([str(junk), "--no-key"]) == 2
    assert "not a usable audit log" in capsys.readouterr().err
    empty = tmp_path / "other.db"
    sqlite3.connect(empty).execute("CREATE TABLE t (x)").connection.close()
    assert verify_main([str(empty), "--no-key"]) == 2
    assert "not a guardrail audit log" in capsys.readouterr().err
    assert verify_main([str(junk)]) == 2
    assert "GUARDRAIL_AUDIT_KEY is not set" in capsys.readouterr().err
