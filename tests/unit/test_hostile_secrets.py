"""Secrets stay out of what sentryctl writes down; its state is private; a ledger is created only on purpose."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import click
import pytest

from orchestrator import adhoc, cli
from orchestrator.redact import mask_argv, mask_text, redact
from orchestrator.settings import Settings

SECRET = "s3cr3t-P4ss"
PG = f"postgresql+psycopg://sentry:{SECRET}@db.example:5432/sentry"


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_mask_argv_hides_urls_and_secret_options() -> None:
    shown = " ".join(mask_argv(["--db-url", PG, f"--db-url={PG}", "--token", "abc", "x", f"see {PG}"]))
    assert SECRET not in shown and "abc" not in shown
    assert shown.count("postgresql+psycopg://sentry:***@db.example:5432/sentry") == 3
    assert mask_text(f"failed: {PG}?password={SECRET}") == (
        "failed: postgresql+psycopg://sentry:***@db.example:5432/sentry?password=***"
    )


def test_debug_log_is_private_and_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    @click.command("boom")
    def boom() -> None:
        raise RuntimeError(f"cannot reach {PG}")

    monkeypatch.setitem(cli.cli.commands, "boom", boom)
    monkeypatch.setattr("sys.argv", ["sentryctl", "--home", str(tmp_path), "--db-url", PG, "boom"])
    code, _, err = run_main(["--home", str(tmp_path), "--db-url", PG, "boom"], capsys)
    assert code == cli.EXIT_UNEXPECTED and SECRET not in err
    log = tmp_path / "debug.log"
    text = log.read_text()
    assert "--db-url postgresql+psycopg://sentry:***@" in text and "RuntimeError" in text
    assert SECRET not in text
    assert mode(log) == 0o600


def test_an_existing_loose_home_is_tightened(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    (home / "runs").mkdir(parents=True)
    (home / "debug.log").write_text("old\n")
    (home / "ledger.db").write_text("")
    for p, m in ((home, 0o755), (home / "runs", 0o755), (home / "debug.log", 0o644), (home / "ledger.db", 0o644)):
        p.chmod(m)
    code, _, err = run_main(["--home", str(home), "--inventories", str(tmp_path), "client", "list"], capsys)
    assert code == 0, err
    assert (mode(home), mode(home / "runs"), mode(home / "debug.log"), mode(home / "ledger.db")) == (
        0o700,
        0o700,
        0o600,
        0o600,
    )


def test_a_shared_home_is_refused_not_changed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    code, _, err = run_main(["--home", str(shared), "client", "list"], capsys)
    assert code == 1 and "is shared" in err
    assert mode(shared) == 0o1777


def test_a_typed_ledger_url_is_never_created_silently(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    typo = tmp_path / "typo" / "ledger.db"
    base = ["--home", str(tmp_path / "home"), "--db-url", f"sqlite:///{typo}"]
    code, _, err = run_main([*base, "ledger", "log"], capsys)
    assert code == 1 and err.strip() == (
        f"error: no ledger exists at sqlite+pysqlite:///{typo} "
        "(create one with 'sentryctl ledger init', or check --db-url / SENTRY_DB_URL)"
    )
    assert not typo.parent.exists()
    empty = tmp_path / "empty.db"
    empty.write_text("")
    code, _, err = run_main(
        ["--home", str(tmp_path / "home"), "--db-url", f"sqlite:///{empty}", "ledger", "log"], capsys
    )
    assert code == 1 and "holds no ledger" in err
    code, out, err = run_main([*base, "ledger", "init"], capsys)
    assert code == 0 and "ledger ready" in out, err
    assert mode(typo) == 0o600
    assert run_main([*base, "ledger", "verify"], capsys)[0] == 0


def test_the_default_ledger_starts_itself_private(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(["--home", str(tmp_path / "home"), "ledger", "verify"], capsys)
    assert code == 0, err
    assert mode(tmp_path / "home" / "ledger.db") == 0o600 and mode(tmp_path / "home") == 0o700


def test_vault_values_are_masked_in_what_exec_records() -> None:
    token = "TOKEN-0123456789abcdef"
    outcome = adhoc.CommandOutcome("h", 0, stdout=f"x{token}y\n" * 3, stderr=f"err {token}", error=None)
    kept = adhoc._recorded(outcome, True, [token, "abc"])
    assert token not in str(kept) and kept["stdout_tail"].startswith("x***y") and kept["stderr_tail"] == "err ***"
    quiet = adhoc._recorded(outcome, False, [token])
    assert quiet == {"output_recorded": False, "error": None}
    assert redact("abc short", ["abc"]) == "abc short"  # too short to be a secret worth blanking text for


def test_private_tree(tmp_path: Path) -> None:
    from orchestrator.settings import private_tree

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f").write_text("x")
    os.chmod(tmp_path / "a" / "b" / "f", 0o644)
    private_tree(tmp_path / "a")
    assert mode(tmp_path / "a" / "b") == 0o700 and mode(tmp_path / "a" / "b" / "f") == 0o600
    assert Settings.from_env(home=tmp_path / "h").tighten_home() is None  # a missing home is left alone


@pytest.mark.parametrize("value", ["{{lookup('pipe','id')}}", "abc{%raw%}defgh", "token{#x#}token", "goodtoken\n"])
def test_a_secret_value_that_ansible_would_render_or_a_trailing_newline_is_refused(value: str, tmp_path: Path) -> None:
    from orchestrator import vault
    from orchestrator.errors import InventoryError

    class Never:
        def append_event(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("nothing may be recorded")

    with pytest.raises(InventoryError):
        vault.set_secret(None, None, "collector_token", value, Never())  # type: ignore[arg-type]


def test_a_revoked_collector_token_never_reaches_the_vault(tmp_path: Path) -> None:
    """Setting collector_token to a value the ledger revoked is refused before the vault changes: the agents keep
    the token that works, not one that gets 401."""
    from orchestrator import clients, vault
    from orchestrator.ledger import Ledger
    from orchestrator.ledger.errors import LedgerError

    settings = Settings.from_env(home=tmp_path / "home", inventories=tmp_path / "inv")
    spec = clients.build_spec(name="acme", tier="professional", hosts=["a=192.0.2.1"], mgmt_networks=["192.0.2.0/24"])
    with Ledger.open(settings.db_url, settings.home) as ledger:
        inv = clients.create(settings, spec, ledger)
        vault.set_secret(settings, inv, "collector_token", "first-token-value", ledger)
        vault.set_secret(settings, inv, "collector_token", "second-token-value", ledger)  # revokes the first
        before = vault.vault_file(inv).read_bytes()
        with pytest.raises(LedgerError, match="revoked"):
            vault.set_secret(settings, inv, "collector_token", "first-token-value", ledger)
        assert vault.vault_file(inv).read_bytes() == before
        assert not vault.vault_file(inv).with_suffix(".tmp").exists()
