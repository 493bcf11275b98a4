"""Malformed inventory files through the CLI: exit 1 and one line from every command that reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import cli

BROKEN = {
    "hosts-list": ("hosts.yml", "all:\n  hosts:\n    - a\n", "all.hosts must be a mapping"),
    "vars-list": ("hosts.yml", "all:\n  vars: [x]\n  hosts: {a: {ansible_host: 192.0.2.1}}\n", "all.vars must be"),
    "known-hosts": ("known_hosts", "192.0.2.1 ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ\n", "not a host key entry"),
    "no-tier": ("client.yml", "client: acme\n", "tier is required"),
    "ssh-args": (
        "group_vars/all.yml",
        "ansible_ssh_args: -o StrictHostKeyChecking=no\n",
        "variable ansible_ssh_args is not allowed",
    ),
}
COMMANDS = {
    "client show": ["client", "show", "acme"],
    "hosts keys": ["hosts", "keys", "--client", "acme"],
    "preflight": ["preflight", "--client", "acme"],
    "provision --dry-run": ["provision", "--client", "acme", "--dry-run"],
    "rollout plan": ["rollout", "plan", "1.0.0", "--client", "acme"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_inventory_is_one_line_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, case: str
) -> None:
    inv = tmp_path / "inv" / "acme"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text("all:\n  hosts:\n    a: {ansible_host: 192.0.2.1}\n")
    (inv / "client.yml").write_text("client: acme\ntier: essentials\n")
    rel, text, message = BROKEN[case]
    (inv / rel).write_text(text)
    home = tmp_path / "home"
    base = ["--home", str(home), "--inventories", str(tmp_path / "inv")]
    if command == "rollout plan":
        for args in (["release", "keygen"], ["release", "build", "--version", "1.0.0", "--track", "hotfix"]):
            with pytest.raises(SystemExit) as built:
                cli.main([*base, *args])
            assert built.value.code == 0
    before = sorted(home.rglob("*")) if home.exists() else []
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        cli.main([*base, *COMMANDS[command]])
    _out, err = capsys.readouterr()
    assert exc.value.code == 1, err
    errors = [line for line in err.splitlines() if not line.startswith("-->")]  # stage lines are progress
    assert len(errors) == 1 and message in errors[0], err
    # Validation comes first: nothing was built, run or recorded under the state dir.
    after = [p for p in (sorted(home.rglob("*")) if home.exists() else []) if not p.name.startswith("ledger.db")]
    assert after == [p for p in before if not p.name.startswith("ledger.db")]


@pytest.mark.parametrize(
    "args",
    [["rollout", "start", "1.0.0"], ["rollout", "plan", "1.0.0"], ["rollout", "plan", "1.0.0", "--all", "-c", "x"]],
)
def test_choosing_no_clients_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--home", str(tmp_path), *args])
    assert exc.value.code == 2 and "--all" in capsys.readouterr().err
