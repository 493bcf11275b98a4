"""The firewall's management rule opens the port Ansible reaches a host on, not only sshd's default port.

A host managed on port 2222 (a second sshd port): after the firewall is applied through an inventory with
ansible_port 2222, the controller still connects on 2222 even while its own address is in the ban set (the
management rule comes before the bans). (Who else may connect is the management-networks rule, tested by the
firewall's own stack tests: every lab address is inside this client's management network.)
"""

from __future__ import annotations

import shutil
import socket
from dataclasses import replace

import pytest
import yaml

from orchestrator import inventory, provision
from orchestrator.runner import run_playbook, tail_stdout

from .conftest import Provisioned

pytestmark = pytest.mark.lab
DROPIN = "/etc/ssh/sshd_config.d/zz-sentry-test-port.conf"


def banner(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=3) as sock:
            return sock.recv(16).startswith(b"SSH-")
    except OSError:
        return False


def test_the_port_ansible_uses_stays_open(provisioned: Provisioned) -> None:
    env = provisioned.env
    settings = env.settings
    victim = env.hosts()[0]
    state = env.lab.state()
    assert state is not None
    controller = str(next(state.network.hosts()))  # the bridge: the lab's first address
    source = inventory.load(settings.inventories, provisioned.client)
    target = settings.inventories / "port2222"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source.path, target)
    (target / "secrets.vault.yml").unlink(missing_ok=True)
    meta = yaml.safe_load((target / "client.yml").read_text())
    (target / "client.yml").write_text(yaml.safe_dump({**meta, "client": "port2222"}))
    hosts = yaml.safe_load((target / "hosts.yml").read_text())
    hosts["all"]["hosts"] = {victim.name: {"ansible_host": victim.address, "ansible_port": 2222}}
    (target / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (target / "known_hosts").write_text(f"[{victim.address}]:2222 {victim.host_key_pub}\n")
    env.ssh(victim, f"printf 'Port 22\\nPort 2222\\n' > {DROPIN} && systemctl restart ssh")
    try:
        inv = inventory.load(settings.inventories, "port2222")
        assert inv.hosts[0].port == 2222
        request = provision.site_request(settings, inv, provisioned.first.bundle, tags=("firewall",))  # type: ignore[attr-defined]
        result = run_playbook(replace(request, label="fw-2222"), settings)
        assert result.ok, tail_stdout(result, 60)
        rules = env.ssh(victim, "nft list chain inet sentry input")
        assert "tcp dport { 22, 2222 }" in rules, rules
        env.ssh(victim, f"nft add element inet sentry banned_v4 '{{ {controller} timeout 60s }}'")
        assert banner(victim.address, 2222), "management on 2222 was cut off by a ban"
    finally:
        env.ssh(victim, f"nft delete element inet sentry banned_v4 '{{ {controller} }}' || true", check=False)
        env.ssh(victim, f"rm -f {DROPIN} && systemctl restart ssh", check=False)
        shutil.rmtree(target, ignore_errors=True)
        # Back to the client's own inventory (port 22 only), as the other stack tests expect.
        back = provision.site_request(settings, source, provisioned.first.bundle, limit=victim.name, tags=("firewall",))  # type: ignore[attr-defined]
        restored = run_playbook(replace(back, label="fw-restore"), settings)
        assert restored.ok, tail_stdout(restored, 60)
