from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sentry_agent import tail as tail_module
from sentry_agent.tail import MAX_LINE_BYTES, FileTailer, OffsetStore, TailPosition

from .agent_helpers import FakeClock, append


def test_starts_at_end_of_an_existing_file(tmp_path: Path) -> None:
    log = tmp_path / "login.log"
    log.write_text("old 1\nold 2\n", encoding="utf-8")
    tailer = FileTailer(log)
    assert tailer.poll() == []
    append(log, "new 1\nnew 2\n")
    assert tailer.poll() == ["new 1", "new 2"]
    assert tailer.poll() == []


def test_partial_lines_wait_for_their_newline(tmp_path: Path) -> None:
    log = tmp_path / "login.log"
    log.write_text("", encoding="utf-8")
    tailer = FileTailer(log)
    tailer.poll()
    append(log, "complete\npart")
    assert tailer.poll() == ["complete"]
    pos = tailer.position()
    assert pos is not None and pos.offset == len("complete\n")  # the partial line is not committed
    append(log, "ial\r\n")
    assert tailer.poll() == ["partial"]


def test_file_appearing_later_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "login.log"
    tailer = FileTailer(log)
    assert tailer.poll() == []
    assert tailer.position() is None
    log.write_text("first\nsecond\n", encoding="utf-8")
    assert tailer.poll() == ["first", "second"]


def test_follows_rename_rotation_and_drains_the_old_file(tmp_path: Path) -> None:
    log = tmp_path / "login.log"
    log.write_text("", encoding="utf-8")
    clock = FakeClock()
    tailer = FileTailer(log, rotate_grace_seconds=5, clock=clock)
    tailer.poll()
    with open(log, "a", encoding="utf-8") as writer:  # the game server's handle survives the rename
        writer.write("before\n")
        writer.flush()
        os.rename(log, tmp_path / "login.log.1")
        writer.write("after rename, old file\n")
        writer.flush()
        assert tailer.poll() == ["before", "after rename, old file"]  # path missing: keep reading old
        log.write_text("new file 1\n", encoding="utf-8")
        assert tailer.poll() == ["new file 1"]
        assert tailer.rotations == 1
        writer.write("late write to old\n")  # before the writer reopens
        writer.flush()
        append(log, "new file 2\n")
        assert tailer.poll() == ["late write to old", "new file 2"]
        clock.advance(5)
        writer.write("unterminated")
        writer.flush()
        assert tailer.poll() == ["unterminated"]  # grace over: the old file is finished
        writer.write(" and more\n")
        writer.flush()
        assert tailer.poll() == []
    pos = tailer.position()
    assert pos is not None and pos.ino == os.stat(log).st_ino


def test_unreadable_new_file_keeps_lines_already_read_and_retries(tmp_path: Path) -> None:
    log = tmp_path / "login.log"
    log.write_text("", encoding="utf-8")
    tailer = FileTailer(log)
    tailer.poll()
    append(log, "before rotation\n")
    os.rename(log, tmp_path / "login.log.1")
    log.mkdir()  # stands in for a new file that cannot be opened (root ignores permission bits)
    assert tailer.poll() == ["before rotation"]
    assert isinstance(tailer.error, IsADirectoryError)
    assert tailer.poll() == []  # still failing, nothing read twice
    log.rmdir()
    log.write_text("new file\n", encoding="utf-8")
    assert tailer.poll() == ["new file"]
    assert tailer.error is None
    assert tailer.rotations == 1


def test_follows_copytruncate(tmp_path: Path) -> None:
    log = tmp_path / "login.log"
    log.write_text("", encoding="utf-8")
    tailer = FileTailer(log)
    tailer.poll()
    append(log, "aaaaaaaaaa\nbbbbbbbbbb\n")
    assert tailer.poll() == ["aaaaaaaaaa", "bbbbbbbbbb"]
    with open(log, "r+b") as fh:
        fh.truncate(0)
    append(log, "c\n")
    assert tailer.poll() == ["c"]
    assert tailer.truncations == 1


def test_offsets_survive_a_restart(tmp_path: Path) -> None:
    log = tmp_path / "login.log"
    store = OffsetStore(tmp_path)
    log.write_text("history\n", encoding="utf-8")
    first = FileTailer(log)
    first.poll()
    append(log, "a\nb\n")
    assert first.poll() == ["a", "b"]
    pos = first.position()
    assert pos is not None
    store.save({"game": pos})
    first.close()

    append(log, "written while stopped\n")
    second = FileTailer(log, store.load()["game"])
    assert second.poll() == ["written while stopped"]  # nothing re-read, nothing missed
    append(log, "c\n")
    assert second.poll() == ["c"]


def test_rotation_while_stopped_reads_the_new_file_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "login.log"
    log.write_text("x\n", encoding="utf-8")
    saved = TailPosition(str(log), os.stat(log).st_dev, os.stat(log).st_ino, 2)
    os.rename(log, tmp_path / "login.log.1")
    log.write_text("fresh 1\nfresh 2\n", encoding="utf-8")
    assert FileTailer(log, saved).poll() == ["fresh 1", "fresh 2"]


def test_truncation_while_stopped_reads_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "login.log"
    log.write_text("short\n", encoding="utf-8")
    st = os.stat(log)
    saved = TailPosition(str(log), st.st_dev, st.st_ino, 4096)
    assert FileTailer(log, saved).poll() == ["short"]


def test_saved_position_for_another_path_is_ignored(tmp_path: Path) -> None:
    log = tmp_path / "login.log"
    log.write_text("old\n", encoding="utf-8")
    st = os.stat(log)
    saved = TailPosition(str(tmp_path / "previous.log"), st.st_dev, st.st_ino, 0)
    assert FileTailer(log, saved).poll() == []


def test_overlong_lines_are_cut_not_buffered_forever(tmp_path: Path) -> None:
    log = tmp_path / "login.log"
    log.write_text("", encoding="utf-8")
    tailer = FileTailer(log)
    tailer.poll()
    append(log, "x" * (MAX_LINE_BYTES + 10) + "\nok\n")
    lines = tailer.poll()
    assert [len(line) for line in lines] == [MAX_LINE_BYTES, 10, 2]


def test_a_large_backlog_is_read_over_several_polls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tail_module, "MAX_READ_PER_POLL", 100)
    log = tmp_path / "login.log"
    log.write_text("", encoding="utf-8")
    tailer = FileTailer(log)
    tailer.poll()
    expected = [f"line {i:03d} LOGIN FAILED" for i in range(60)]
    append(log, "".join(line + "\n" for line in expected))
    batches = [tailer.poll() for _ in range(40)]
    assert len(batches[0]) < len(expected)  # bounded per poll...
    assert [line for batch in batches for line in batch] == expected  # ...with nothing lost or split


def test_offset_store_roundtrip_and_damage(tmp_path: Path) -> None:
    store = OffsetStore(tmp_path)
    assert store.load() == {}
    positions = {"game": TailPosition("/var/log/x", 1, 2, 3), "sshd": TailPosition("/var/log/y", 1, 5, 0)}
    store.save(positions)
    assert store.load() == positions
    assert sorted(p.name for p in tmp_path.iterdir()) == ["offsets.json"]  # no temp file left behind
    assert json.loads(store.path.read_text(encoding="utf-8"))["version"] == 1
    store.path.write_text("{not json", encoding="utf-8")
    assert store.load() == {}
    store.path.write_text('{"sources": {"game": {"path": "/x"}}}', encoding="utf-8")
    assert store.load() == {}
