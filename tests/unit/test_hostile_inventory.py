"""Hostile inventories: every file is checked at load, and no value can weaken SSH or run on the controller."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from orchestrator import clients, inventory, remote, runner
from orchestrator.errors import InventoryError
from orchestrator.inventory import Host, Inventory
from orchestrator.ledger import Ledger
from orchestrator.settings import Settings

GOOD_HOSTS = "all:\n  hosts:\n    a: {ansible_host: 192.0.2.1}\n"
KEY = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + b"k" * 32).decode()


def make(tmp_path: Path, hosts: str = GOOD_HOSTS, client: str | None = None, **files: str) -> Path:
    d = tmp_path / "acme"
    d.mkdir(parents=True, exist_ok=True)
    (d / "hosts.yml").write_text(hosts)
    (d / "client.yml").write_text(client if client is not None else "client: acme\ntier: essentials\n")
    for rel, text in files.items():
        path = d / rel.replace("__", "/").replace("_yml", ".yml")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def refused(tmp_path: Path) -> str:
    with pytest.raises(InventoryError) as exc:
        inventory.load(tmp_path, "acme")
    message = str(exc.value)
    assert "\n" not in message
    return message


REFUSED_VARS = [
    ("ansible_ssh_args", "-o StrictHostKeyChecking=no"),
    ("ansible_ssh_common_args", "-o ProxyCommand='touch /tmp/x'"),
    ("ansible_ssh_extra_args", "-o UserKnownHostsFile=/dev/null"),
    ("ansible_connection", "local"),
    ("ansible_ssh_executable", "/tmp/evil"),
    ("ansible_host_key_checking", False),
    ("ansible_ssh_host_key_checking", False),
    ("ansible_ssh_pipelining", False),
    ("ansible_pipelining", False),
    ("ansible_sftp_extra_args", "-o ProxyCommand=x"),
    ("ansible_scp_extra_args", "-o ProxyCommand=x"),
    ("ansible_ssh_host", "203.0.113.9"),
    ("ansible_password", "hunter2"),
    ("ansible_become_exe", "/tmp/evil"),
    ("ansible_shell_executable", "/tmp/evil"),
    ("ansible_paramiko_proxy_command", "touch /tmp/x"),
]


@pytest.mark.parametrize(("name", "value"), REFUSED_VARS)
@pytest.mark.parametrize("where", ["host", "group", "group_vars", "host_vars", "group_vars_dir"])
def test_connection_variables_outside_the_allowlist_are_refused(
    tmp_path: Path, name: str, value: object, where: str
) -> None:
    line = yaml.safe_dump({name: value}, default_flow_style=True).strip()
    if where == "host":
        make(tmp_path, f"all:\n  hosts:\n    a: {{ansible_host: 192.0.2.1, {line[1:-1]}}}\n")
        file = "hosts.yml"
    elif where == "group":
        make(tmp_path, f"all:\n  children:\n    game:\n      vars: {line}\n      hosts:\n        a:\n")
        file = "hosts.yml"
    elif where == "group_vars":
        make(tmp_path, group_vars__all_yml=f"{line}\n")
        file = "group_vars/all.yml"
    elif where == "host_vars":
        make(tmp_path, host_vars__a=f"{line}\n")
        file = "host_vars/a"
    else:
        make(tmp_path, group_vars__all__conn_yml=f"{line}\n")
        file = "group_vars/all/conn.yml"
    message = refused(tmp_path)
    assert file in message and f"variable {name} " in message and "not allowed in an inventory" in message


@pytest.mark.parametrize(
    "value",
    ["{{ lookup('pipe', 'touch /tmp/x') }}", "{% if true %}x{% endif %}", "{# c #}", ["ok", {"k": "{{ x }}"}]],
)
def test_templates_are_refused_anywhere(tmp_path: Path, value: object) -> None:
    # Ansible renders inventory values on the controller: lookup('pipe') would run a command there.
    make(tmp_path, group_vars__all_yml=yaml.safe_dump({"sentry_client": value}))
    assert "holds a template" in refused(tmp_path)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ansible_user", "root\n  ProxyCommand touch /tmp/x", "invalid SSH user"),
        ("ansible_user", "root\n", "invalid SSH user"),
        ("ansible_host", "192.0.2.1\nProxyCommand x", "invalid host address"),
        ("ansible_host", "game.example.com\n", "invalid host address"),
        ("ansible_port", "22\n", "invalid SSH port"),
        ("ansible_port", True, "invalid SSH port"),
        ("ansible_ssh_private_key_file", "/k\nansible_ssh_args: x", "invalid SSH key path"),
        ("ansible_ssh_private_key_file", "/my keys/id", "invalid SSH key path"),
        ("ansible_python_interpreter", "python3; touch /tmp/x", "invalid ansible_python_interpreter"),
    ],
)
def test_allowed_connection_variables_are_validated(tmp_path: Path, name: str, value: object, message: str) -> None:
    make(tmp_path, host_vars__a_yml=yaml.safe_dump({name: value}))
    got = refused(tmp_path)
    assert message in got and "host_vars/a.yml" in got


def test_allowed_connection_variables_follow_ansible_precedence(tmp_path: Path) -> None:
    make(
        tmp_path,
        "all:\n  vars: {ansible_user: fromfile, ansible_port: 2200}\n  children:\n    game:\n"
        "      hosts:\n        a: {ansible_host: 192.0.2.1}\n"
        "        b: {ansible_host: 192.0.2.2, ansible_port: 2201}\n",
        group_vars__all_yml="ansible_user: deploy\nansible_python_interpreter: /usr/bin/python3\n",
        group_vars__game_yml="ansible_port: 2222\n",
        host_vars__b_yml="ansible_user: other\n",
    )
    hosts = {h.name: h for h in inventory.load(tmp_path, "acme").hosts}
    assert (hosts["a"].user, hosts["a"].port) == ("deploy", 2222)
    assert (hosts["b"].user, hosts["b"].port) == ("other", 2201)


@pytest.mark.parametrize(
    ("hosts", "message"),
    [
        ("all:\n  hosts:\n    - a\n", "all.hosts must be a mapping (key: value), not a list"),
        ("all:\n  vars: [ansible_user]\n  hosts: {a: }\n", "all.vars must be a mapping (key: value), not a list"),
        ("all:\n  children: [game]\n", "all.children must be a mapping"),
        ("all:\n  hosts: {a: [x]}\n", "all.hosts.a must be a mapping"),
        ("all:\n  host: {a: }\n", "all.host is not a known key"),
        ("all:\n  hosts: {a: }\nother:\n  hosts: {b: }\n", "other is not a known key"),
        ("all:\n  children:\n    bad-group: {hosts: {a: }}\n", "invalid group name"),
        ("all:\n  hosts: {'a\\nb': }\n", "invalid host name"),
    ],
)
def test_malformed_hosts_files_get_one_line(tmp_path: Path, hosts: str, message: str) -> None:
    make(tmp_path, hosts)
    got = refused(tmp_path)
    assert message in got and "hosts.yml" in got


@pytest.mark.parametrize(
    ("client", "message"),
    [
        ("client: acme\n", "tier is required"),
        ("client: acme\ntier: null\n", "tier must be a string"),
        ("client: acme\ntier: gold\n", "unknown tier 'gold'"),
        ("client: other\ntier: essentials\n", "client is 'other' but the folder is 'acme'"),
        ("client: acme\ntier: essentials\ncontacts: {a: b}\n", "contacts must be a list"),
        ("client: acme\ntier: essentials\ncontacts: ['no mail']\n", "invalid contact"),
        ("client: acme\ntier: essentials\ntierr: x\n", "tierr is not a known key"),
        ("- a list\n", "the file must be a mapping"),
    ],
)
def test_malformed_client_files_get_one_line(tmp_path: Path, client: str, message: str) -> None:
    make(tmp_path, client=client)
    got = refused(tmp_path)
    assert message in got and "client.yml" in got


@pytest.mark.parametrize(
    "line",
    ["garbage", "192.0.2.1 ssh-ed25519", "192.0.2.1 ssh-ed25519 !!!notbase64", f"192.0.2.1 ssh-rsa {KEY}", "a b c"],
)
def test_garbage_known_hosts_get_one_line(tmp_path: Path, line: str) -> None:
    make(tmp_path, known_hosts=f"192.0.2.1 ssh-ed25519 {KEY}\n{line}\n")
    got = refused(tmp_path)
    assert "known_hosts: line 2 is not a host key entry" in got and "hosts pin" in got


def test_paramiko_parse_errors_are_one_line(tmp_path: Path) -> None:
    """Even past the loader (a file changed after load), paramiko's parse errors become InventoryError."""
    make(tmp_path, known_hosts=f"192.0.2.1 ssh-ed25519 {KEY}\n")
    inv = inventory.load(tmp_path, "acme")
    inv.known_hosts.write_text("192.0.2.1 ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ\n")  # InvalidHostKey
    with pytest.raises(InventoryError, match="cannot be read"):
        remote.pinned(inv)
    with pytest.raises(InventoryError, match="cannot be read"):
        remote.strict_client(inv)


@pytest.mark.parametrize(
    "host",
    [
        Host("a", "192.0.2.1", 22, "root\n  ProxyCommand touch /tmp/x"),
        Host("a", "192.0.2.1", 22, "root", Path('/k"\nProxyCommand x')),
        Host("a\nProxyCommand x", "192.0.2.1"),
    ],
)
def test_ssh_config_refuses_what_would_start_a_new_directive(tmp_path: Path, host: Host) -> None:
    inv = Inventory("acme", tmp_path, (host,))
    with pytest.raises(InventoryError, match="refusing to write"):
        remote.write_ssh_config(inv, tmp_path / "ssh_config", tmp_path / "cp")
    assert not (tmp_path / "ssh_config").exists()


def test_ssh_config_quotes_values_and_escapes_tokens(tmp_path: Path) -> None:
    inv = Inventory("acme", tmp_path / "a%h", (Host("a", "192.0.2.1", 2222, "deploy", Path("/keys/id%x")),))
    text = remote.write_ssh_config(inv, tmp_path / "ssh_config", tmp_path / "cp").read_text()
    assert '  User "deploy"' in text and '  IdentityFile "/keys/id%%x"' in text
    assert f'  UserKnownHostsFile "{tmp_path}/a%%h/known_hosts"' in text
    assert all(line.startswith(("Host ", "  ")) for line in text.splitlines())


def test_sentryctls_connection_settings_are_extra_vars(tmp_path: Path) -> None:
    make(tmp_path)
    inv = inventory.load(tmp_path, "acme")
    settings = Settings.from_env(home=tmp_path / "home", inventories=tmp_path)
    request = runner.RunRequest(
        Path("site.yml"), inv, "t", extravars={"sentry_x": 1, "ansible_ssh_args": "-o StrictHostKeyChecking=no"}
    )
    ev = runner.run_extravars(request, settings)
    # Extra vars are Ansible's highest precedence; a caller's variable cannot replace them either.
    assert "StrictHostKeyChecking=yes" in ev["ansible_ssh_args"] and ev["sentry_x"] == 1
    assert ev["ansible_ssh_common_args"] == "" and ev["ansible_ssh_extra_args"] == ""
    assert ev["ansible_connection"] == "ssh" and ev["ansible_host_key_checking"] is True
    config = runner.build_config(request, settings, "RUN")
    assert config["extravars"].endswith("extravars.json")
    assert config["envvars"]["ANSIBLE_INVENTORY_ENABLED"] == "yaml"


# --- client new: what is rendered is what was validated --------------------------------------------------------


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    (tmp_path / "home").mkdir(exist_ok=True)
    with Ledger.open(None, tmp_path / "home") as opened:
        yield opened  # type: ignore[misc]


SPEC = {
    "name": "acme",
    "tier": "professional",
    "hosts": ["game1=203.0.113.10"],
    "mgmt_networks": ["198.51.100.0/24"],
}


def test_key_path_with_a_newline_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "id\n    ansible_ssh_common_args: -o ProxyCommand=x"
    evil.write_text("key")
    with pytest.raises(InventoryError, match="invalid --key path"):
        clients.build_spec(**SPEC, key_file=str(evil))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "acme\n"),
        ("user", "root\n"),
        ("user", "root\nansible_ssh_args: x"),
        ("hosts", ["game\n1=203.0.113.10"]),
        ("contacts", ["Ana <ana@acme.example>\n  - evil"]),
        ("contacts", ["Ana\n <ana@acme.example>"]),
    ],
)
def test_trailing_newlines_do_not_pass_validation(field: str, value: object) -> None:
    with pytest.raises(InventoryError):
        clients.build_spec(**{**SPEC, field: value})  # type: ignore[arg-type]


def test_a_contact_with_quotes_round_trips(tmp_path: Path, ledger: Ledger) -> None:
    contact = 'Ana "The Boss" O\'Ops: ops, #1 <ana@acme.example>'
    spec = clients.build_spec(**SPEC, contacts=[contact, "Bo <bo@acme.example>"])  # type: ignore[arg-type]
    settings = Settings.from_env(home=tmp_path / "home", inventories=tmp_path / "inv")
    inv = clients.create(settings, spec, ledger)
    assert inv.meta["contacts"] == [contact, "Bo <bo@acme.example>"]
    assert yaml.safe_load((inv.path / "hosts.yml").read_text())["all"]["vars"] == {"ansible_user": "root"}
