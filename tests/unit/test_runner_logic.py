"""Pure logic of the Ansible engine: argument building, event parsing, stats, cancellation."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from orchestrator.inventory import Host, Inventory
from orchestrator.runner import (
    ENV_ALLOW,
    Cancellation,
    RunEvent,
    RunRequest,
    RunResult,
    build_config,
    new_run_id,
    outcomes_from_stats,
    simplify_event,
    unfinished_outcomes,
)
from orchestrator.settings import Settings

DATA = Path(__file__).parent / "data"


@pytest.fixture
def request_(tmp_path: Path) -> RunRequest:
    inv = Inventory(client="acme", path=tmp_path / "acme", hosts=(Host("web1", "192.0.2.10"),))
    return RunRequest(playbook=Path("/x/site.yml"), inventory=inv, label="Provision ACME!")


def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(home=tmp_path / "home", inventories=tmp_path)


def test_config_has_strict_host_keys_pipelining_and_private_dirs(request_: RunRequest, tmp_path: Path) -> None:
    cfg = build_config(request_, settings(tmp_path), "RUN1")
    env = cfg["envvars"]
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert "StrictHostKeyChecking=yes" in env["ANSIBLE_SSH_ARGS"]
    assert f"UserKnownHostsFile={tmp_path / 'acme' / 'known_hosts'}" in env["ANSIBLE_SSH_ARGS"]
    assert "ControlPersist=" in env["ANSIBLE_SSH_ARGS"]
    assert env["ANSIBLE_PIPELINING"] == "True"
    assert Path(env["ANSIBLE_SSH_CONTROL_PATH_DIR"]).name.startswith("sentry-cp-")
    assert cfg["private_data_dir"] == str(tmp_path / "home" / "runs" / "RUN1")
    assert cfg["suppress_env_files"] is True
    assert cfg["cmdline"] is None and cfg["tags"] is None
    assert cfg["extravars"] == str(tmp_path / "home" / "runs" / "RUN1" / "extravars.json")
    assert all(ENV_ALLOW.match(k) for k in env)


def test_config_check_diff_tags_limit_and_extravars_file(request_: RunRequest, tmp_path: Path) -> None:
    req = RunRequest(
        playbook=request_.playbook,
        inventory=request_.inventory,
        label="x",
        limit="web1",
        tags=("agent", "firewall"),
        skip_tags=("slow",),
        extravars={"sentry_agent_version": "1.2.3"},
        check=True,
        diff=True,
        forks=3,
    )
    cfg = build_config(req, settings(tmp_path), "RUN2")
    assert cfg["cmdline"] == "--check --diff --skip-tags slow"
    assert cfg["tags"] == "agent,firewall"
    assert cfg["limit"] == "web1" and cfg["forks"] == 3
    # Extra vars go by file (-e @file), never as JSON on the command line.
    assert cfg["extravars"] == str(tmp_path / "home" / "runs" / "RUN2" / "extravars.json")


def test_env_allowlist_keeps_secrets_out() -> None:
    for key in ("SENTRY_DB_URL", "AWS_SECRET_ACCESS_KEY", "VAULT_TOKEN", "PGPASSWORD"):
        assert not ENV_ALLOW.match(key)
    for key in ("PATH", "ANSIBLE_SSH_ARGS", "HOME", "LC_ALL"):
        assert ENV_ALLOW.match(key)


def test_run_id_is_sortable_and_readable() -> None:
    rid = new_run_id("Provision ACME!", dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    assert rid.startswith("20260102T030405Z-provision-acme-")
    assert len(rid.rsplit("-", 1)[1]) == 6


def recorded() -> list[dict[str, object]]:
    return json.loads((DATA / "events_fail_one.json").read_text())


def test_stats_not_raw_failed_events_decide_host_status() -> None:
    events = recorded()
    raw_failed_hosts = {e["event_data"]["host"] for e in events if e["event"] == "runner_on_failed"}  # type: ignore[index]
    assert raw_failed_hosts == {"lab-1", "lab-2", "lab-3"}  # the rescued failure is reported raw for all
    stats = next(e for e in events if e["event"] == "playbook_on_stats")["event_data"]
    outcomes = outcomes_from_stats(stats)  # type: ignore[arg-type]
    assert {h: o.status for h, o in outcomes.items()} == {"lab-1": "ok", "lab-2": "failed", "lab-3": "ok"}
    assert outcomes["lab-1"].rescued == 1


def test_simplified_events_for_progress() -> None:
    kinds = [ev.kind for e in recorded() if (ev := simplify_event(e)) is not None]  # type: ignore[arg-type]
    assert kinds[0] == "play_start" and kinds[-1] == "stats"
    assert kinds.count("task_start") == 3 and kinds.count("skipped") == 2
    failed = [simplify_event(e) for e in recorded() if e["event"] == "runner_on_failed"]  # type: ignore[arg-type]
    assert any(ev is not None and ev.message == "doomed on purpose" for ev in failed)
    changed = simplify_event({"event": "runner_on_ok", "event_data": {"host": "h", "res": {"changed": True}}})
    assert changed is not None and changed.kind == "changed"
    ignored = simplify_event({"event": "runner_on_failed", "event_data": {"host": "h", "ignore_errors": True}})
    assert ignored is not None and ignored.kind == "ok"
    assert simplify_event({"event": "verbose"}) is None


def test_unreachable_outranks_failed_and_missing_stats_is_not_ok(tmp_path: Path) -> None:
    outcomes = outcomes_from_stats(
        {"dark": {"a": 1}, "failures": {"a": 1, "b": 1}, "ok": {"c": 2}, "processed": {"d": 1}}
    )
    assert {h: o.status for h, o in outcomes.items()} == {"a": "unreachable", "b": "failed", "c": "ok", "d": "ok"}
    good = {"c": outcomes["c"]}
    assert RunResult("r", "successful", 0, good, tmp_path, stats_seen=True).ok
    assert not RunResult("r", "successful", 0, good, tmp_path, stats_seen=False).ok
    assert not RunResult("r", "failed", 2, good, tmp_path, stats_seen=True).ok
    assert not RunResult("r", "successful", 0, outcomes, tmp_path, stats_seen=True).ok


def test_cancel_waits_for_the_next_play_boundary() -> None:
    c = Cancellation()
    assert not c.should_stop()
    c.request()
    assert c.should_stop()  # no play has started yet: stop at once
    c = Cancellation()
    c.observe(RunEvent("play_start", play="one"))
    c.request()
    assert not c.should_stop()  # the running play finishes
    c.observe(RunEvent("task_start", task="t"))
    assert not c.should_stop()
    c.observe(RunEvent("play_start", play="two"))
    assert c.should_stop()


def test_forced_cancel_stops_at_once() -> None:
    c = Cancellation()
    c.observe(RunEvent("play_start", play="one"))
    c.request(force=True)
    assert c.should_stop()


def test_every_run_has_a_task_and_a_run_timeout(request_: RunRequest, tmp_path: Path) -> None:
    cfg = build_config(request_, settings(tmp_path), "RUN3")
    assert int(cfg["envvars"]["ANSIBLE_TASK_TIMEOUT"]) > 0 and int(cfg["timeout"]) > 0
    short = RunRequest(
        playbook=request_.playbook, inventory=request_.inventory, label="x", task_timeout=7, run_timeout=30
    )
    cfg = build_config(short, settings(tmp_path), "RUN4")
    assert cfg["envvars"]["ANSIBLE_TASK_TIMEOUT"] == "7" and cfg["timeout"] == 30


def test_a_run_killed_at_its_timeout_fails_every_unfinished_host() -> None:
    seen = {"web1": {"ok": 3}, "web2": {"ok": 1, "unreachable": 1}, "web3": {"ok": 2, "failed": 1}}
    out = unfinished_outcomes(seen, ["web1", "web2", "web3", "web4"])
    assert {h: o.status for h, o in out.items()} == {
        "web1": "failed",  # still running when the run was killed
        "web2": "unreachable",
        "web3": "failed",
        "web4": "failed",  # never reported anything
    }
    assert out["web1"].ok == 3 and out["web3"].failed == 1


def test_ssh_masters_are_never_shared_across_pins(request_: RunRequest, tmp_path: Path) -> None:
    """An open ControlMaster is reused without a host key check: a master opened under other pinned keys (another
    inventory, another state home, or before a re-pin) must live in another folder; and the folder stays short
    enough for a unix socket even under a deep home."""
    from orchestrator.sshmux import masters_dir

    s = settings(tmp_path)
    known = request_.inventory.known_hosts
    known.parent.mkdir(parents=True)
    known.write_text("192.0.2.10 ssh-ed25519 AAAAone\n")
    first = masters_dir(s.home, known)
    assert masters_dir(s.home, known) == first
    known.write_text("192.0.2.10 ssh-ed25519 AAAAtwo\n")
    assert masters_dir(s.home, known) != first
    other = tmp_path / "other" / "known_hosts"
    other.parent.mkdir()
    other.write_text("192.0.2.10 ssh-ed25519 AAAAtwo\n")
    assert masters_dir(s.home, other) != masters_dir(s.home, known)
    assert masters_dir(tmp_path / "elsewhere", known) != masters_dir(s.home, known)
    deep = tmp_path / ("d" * 100) / "home"
    # sun_path is 108 bytes; ssh appends a 17-byte suffix to the 40-character %C name while it sets a master up.
    assert len(str(masters_dir(deep, known))) + 1 + 40 + 17 < 108
    env = build_config(request_, s, "RUN2")["envvars"]
    assert env["ANSIBLE_SSH_CONTROL_PATH_DIR"] == str(masters_dir(s.home, known))
    assert env["ANSIBLE_SSH_CONTROL_PATH"] == "%(directory)s/%%C"


def test_ssh_config_uses_the_masters_ansible_opens(request_: RunRequest, tmp_path: Path) -> None:
    """The health and smoke checks ride the connection the wave's run opened: same folder, same socket name."""
    from orchestrator import remote
    from orchestrator.sshmux import masters_dir

    s = settings(tmp_path)
    inv = request_.inventory
    inv.known_hosts.parent.mkdir(parents=True, exist_ok=True)
    inv.known_hosts.write_text("192.0.2.10 ssh-ed25519 AAAAone\n")
    text = remote.write_ssh_config(inv, tmp_path / "ssh_config", s.home).read_text()
    assert f'ControlPath "{masters_dir(s.home, inv.known_hosts)}/%C"' in text


def test_a_masters_folder_that_is_not_ours_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The temp dir is shared: a link (or another user's folder) in the masters' place is refused, never used."""
    from orchestrator.errors import ConfigError
    from orchestrator.sshmux import ensure_masters_dir, masters_dir

    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    (tmp_path / "tmp").mkdir()
    known = tmp_path / "known_hosts"
    target = masters_dir(tmp_path / "home", known)
    (tmp_path / "elsewhere").mkdir()
    target.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="not a folder of this user"):
        ensure_masters_dir(tmp_path / "home", known)
    target.unlink()
    made = ensure_masters_dir(tmp_path / "home", known)
    assert made == target and oct(made.stat().st_mode & 0o777) == "0o700"
