"""Watchlists: CSV/YAML loading with versions, file:line errors, atomic reload, snapshots."""

from __future__ import annotations

import hashlib
import threading
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrail.context import (
    Watchlist,
    WatchlistError,
    WatchlistRegistry,
    load_watchlist,
    normalise_value,
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_with_version_and_notes(tmp_path: Path) -> None:
    path = write(
        tmp_path / "involved.csv",
        "# version: 2025-03-01\nvalue,note\n6222-0212-3456,涉案\n\n# a comment\n6217 0000 1111,\n",
    )
    wl = load_watchlist(path, "involved_accounts")
    assert wl.name == "involved_accounts"
    assert wl.label == "2025-03-01"
    assert wl.version == hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert wl.entries == frozenset({"622202123456", "621700001111"})
    assert wl.contains(" 6222 0212 3456 ")
    assert wl.contains("６２１７００００１１１１")  # full-width digits from an input method
    assert not wl.contains("6222")


def test_csv_without_version_uses_content_hash(tmp_path: Path) -> None:
    path = write(tmp_path / "phones.csv", "note,value\nscam line,+86 138-0013-8000\n")
    wl = load_watchlist(path, "fraud_phones")
    assert wl.version == hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert wl.contains("+8613800138000")


def test_yaml_plain_and_mapping_entries(tmp_path: Path) -> None:
    path = write(
        tmp_path / "agents.yaml",
        "version: 7\nentries:\n  - AGENT-001\n  - value: 0755123\n    note: registry\n",
    )
    wl = load_watchlist(path, "surrender_agents")
    assert wl.label == "7"
    assert wl.version == hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert wl.entries == frozenset({"agent001", "0755123"})  # leading zero kept as written


def test_yaml_without_version_uses_content_hash(tmp_path: Path) -> None:
    path = write(tmp_path / "w.yml", "entries: [C100, C200]\n")
    wl = load_watchlist(path, "warned_customers")
    assert wl.version == hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert wl.contains("c100")


@pytest.mark.parametrize(
    ("name", "text", "where", "what"),
    [
        ("a.csv", "account,note\n1,x\n", ":1:", "no 'value' column"),
        ("b.csv", "# version: 1\nvalue,note\n123,ok\n456\n", ":4:", "expected 2 fields"),
        ("c.csv", "value\n123\n - \n", ":3:", "empty value"),
        ("d.csv", "value,colour\n1,red\n", ":1:", "header columns"),
        ("e.csv", "#version 3\nvalue\n1\n", ":1:", "malformed version line"),
        ("f.csv", "", ":1:", "no header row"),
        ("g.yaml", "version: 1\nentries:\n  - ok\n  - [nested]\n", ":4:", "must be a scalar"),
        ("h.yaml", "version: 1\nentries:\n  - note: no value\n", ":3:", "no 'value'"),
        ("i.yaml", "version: 1\nitems: [a]\n", ":2:", "unknown key 'items'"),
        ("j.yaml", "version: 1\nentries: [a, b\n", ":3:", "malformed YAML"),
        ("k.yaml", "- a\n- b\n", ":1:", "expected a mapping"),
        ("l.yaml", "version: 1\n", ":1:", "missing 'entries'"),
        ("m.yaml", "version: 1\nentries:\n  - a\n  -\n", ":4:", "empty value"),
        ("n.txt", "value\n1\n", ":0:", "unsupported watchlist format"),
    ],
)
def test_malformed_files_name_file_and_line(
    tmp_path: Path, name: str, text: str, where: str, what: str
) -> None:
    path = write(tmp_path / name, text)
    with pytest.raises(WatchlistError) as info:
        load_watchlist(path, "x")
    message = str(info.value)
    assert message.startswith(f"{path}{where}"), message
    assert what in message


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(WatchlistError, match="cannot read"):
        load_watchlist(tmp_path / "absent.csv", "x")
    path = tmp_path / "gbk.csv"
    path.write_bytes("value\n张三\n".encode("gbk"))
    with pytest.raises(WatchlistError, match=r"gbk\.csv:2: not UTF-8"):
        load_watchlist(path, "x")


def test_normalise_value() -> None:
    assert normalise_value(" AB-12 34 ") == "ab1234"


def test_reload_changes_next_lookup_but_not_a_snapshot_in_flight(tmp_path: Path) -> None:
    path = write(tmp_path / "involved.csv", "# version: 1\nvalue\n111111\n")
    registry = WatchlistRegistry()
    registry.reload("involved_accounts", path)
    in_flight = registry.snapshot()  # held by a screening that started before the reload

    write(path, "# version: 2\nvalue\n222222\n")
    new = registry.reload("involved_accounts", path)

    assert new.label == "2"
    assert registry.snapshot()["involved_accounts"].contains("222222")
    assert not registry.snapshot()["involved_accounts"].contains("111111")
    assert in_flight["involved_accounts"].label == "1"
    assert in_flight["involved_accounts"].contains("111111")
    assert not in_flight["involved_accounts"].contains("222222")
    with pytest.raises(TypeError):
        in_flight["x"] = new  # type: ignore[index]


def test_failed_reload_keeps_the_old_list(tmp_path: Path) -> None:
    path = write(tmp_path / "w.csv", "# version: 1\nvalue\n111111\n")
    registry = WatchlistRegistry()
    registry.reload("w", path)
    write(path, "# version: 2\nvalue,note\n222222\n")
    with pytest.raises(WatchlistError, match=r"w\.csv:3:"):
        registry.reload("w", path)
    assert registry.snapshot()["w"].label == "1"
    assert registry.names() == frozenset({"w"})


def test_register_and_names() -> None:
    registry = WatchlistRegistry([Watchlist.of("a", "1", ["x"])])
    registry.register(Watchlist.of("b", "1", ["y"]))
    assert registry.names() == frozenset({"a", "b"})
    assert registry["b"].contains("Y")


def test_readers_see_whole_versions_during_concurrent_reloads(tmp_path: Path) -> None:
    registry = WatchlistRegistry([Watchlist.of("w", "0", ["v0"], label="0")])
    stop = threading.Event()
    torn: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            wl = registry.snapshot()["w"]
            if not wl.contains(f"v{wl.label}"):
                torn.append(wl.label)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for version in range(1, 40):
        path = write(tmp_path / f"w{version}.csv", f"# version: {version}\nvalue\nv{version}\n")
        registry.reload("w", path)
    stop.set()
    for thread in threads:
        thread.join()
    assert torn == []
    assert registry.snapshot()["w"].label == "39"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127)) | st.text())
def test_the_ascii_shortcut_of_normalise_value_changes_nothing(value: str) -> None:
    separators = str.maketrans("", "", " -\t")
    slow = unicodedata.normalize("NFKC", value).strip().translate(separators).casefold()
    assert normalise_value(value) == slow
