"""Evidence files stored by content: ``ROOT/ab/abcdef...`` named by their SHA-256.

The chain holds each file's hash (in its ``evidence_attached`` entry), so a file changed,
replaced or removed after it was attached is detected by :func:`check_evidence`. Files are
written once (temporary file, fsync, atomic rename) and made read-only; storing the same
bytes twice keeps one file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from guardrail.cases.errors import EvidenceError

_CHUNK = 1 << 20


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class EvidenceProblem:
    """An evidence file that no longer matches the hash the chain holds."""

    case_id: str
    seq: int
    sha256: str
    kind: str  # "missing" | "modified"
    message: str

    def to_dict(self) -> dict[str, object]:
        return {
            "case_id": self.case_id,
            "seq": self.seq,
            "sha256": self.sha256,
            "kind": self.kind,
            "message": self.message,
        }


class EvidenceStore:
    """A content-addressed folder of evidence files."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data`` durably; returns its SHA-256 (hex)."""
        digest = sha256_of(data)
        target = self.path_of(digest)
        if target.is_file() and self.hash_file(target) == digest:
            return digest
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.chmod(tmp, 0o444)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise EvidenceError(f"{self.root}: cannot store evidence: {exc.strerror}") from None
        return digest

    def get(self, sha256: str) -> bytes:
        """The stored bytes; raises :class:`EvidenceError` when missing or not matching."""
        path = self.path_of(sha256)
        try:
            data = path.read_bytes()
        except OSError:
            raise EvidenceError(f"{path}: evidence file missing") from None
        if sha256_of(data) != sha256:
            raise EvidenceError(f"{path}: evidence file modified (hash mismatch)")
        return data

    @staticmethod
    def hash_file(path: Path) -> str:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def check(self, case_id: str, seq: int, sha256: str) -> EvidenceProblem | None:
        """None when the file is there with the hash the chain holds."""
        path = self.path_of(sha256)
        if not path.is_file():
            return EvidenceProblem(
                case_id, seq, sha256, "missing", f"{path}: evidence of case {case_id} is missing"
            )
        try:
            actual = self.hash_file(path)
        except OSError as exc:
            return EvidenceProblem(
                case_id, seq, sha256, "missing", f"{path}: cannot read: {exc.strerror}"
            )
        if actual != sha256:
            return EvidenceProblem(
                case_id,
                seq,
                sha256,
                "modified",
                f"{path}: evidence of case {case_id} (entry {seq}) was modified: "
                f"hash {actual[:16]}..., the chain holds {sha256[:16]}...",
            )
        return None


def default_evidence_root(log_path: str | Path) -> Path:
    """Where a SQLite log's evidence lives by default: ``LOG.evidence/`` beside it."""
    path = Path(log_path)
    return path.with_name(path.name + ".evidence")
