"""Issue 13: the content hash covers every decision-changing file, watchlist data included;
a watchlist's version is derived from its content; a decision names both."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from guardrail.guard import Guard, parse_event
from guardrail.lang import load_pack
from support import STARTER, example_event_data


def test_every_decision_changing_file_changes_the_hash(tmp_path: Path) -> None:
    pack_dir = tmp_path / "starter"
    shutil.copytree(STARTER, pack_dir)
    seen = {load_pack(pack_dir).content_hash}
    for name in ("rules.yaml", "context.yaml", "questionnaire.yaml", "data/involved_accounts.csv"):
        path = pack_dir / name
        path.write_text(path.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
        digest = load_pack(pack_dir).content_hash
        assert digest not in seen, name
        seen.add(digest)
    # the approval manifest and files outside the pack are not content
    (pack_dir / "approval.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("x")
    assert load_pack(pack_dir).content_hash in seen


def test_a_version_header_cannot_misname_the_list(tmp_path: Path) -> None:
    pack_dir = tmp_path / "starter"
    shutil.copytree(STARTER, pack_dir)
    listed = pack_dir / "data" / "involved_accounts.csv"
    payee = "6222000055556666777"
    listed.write_text(f"# version: 2020-01-01\nvalue\n{payee}\n", encoding="utf-8")
    digest = hashlib.sha256(listed.read_bytes()).hexdigest()[:12]
    pack = load_pack(pack_dir)
    assert pack.watchlist_digests["involved_accounts"] == digest
    data = example_event_data()
    data.update(kind="transfer", counterparty={"account": payee})
    decision = Guard(pack).screen(parse_event(data))
    assert decision.pack.content_hash == pack.content_hash
    assert decision.watchlists == {"involved_accounts": digest}
    hit = next(h for h in decision.hits if h.rule_id == "payee-involved-account")
    assert f"version {digest}" in hit.evidence[0].detail
    # same header, different entries: a different version
    listed.write_text(f"# version: 2020-01-01\nvalue\n{payee}\n111122223333\n", encoding="utf-8")
    assert load_pack(pack_dir).watchlist_digests["involved_accounts"] != digest
