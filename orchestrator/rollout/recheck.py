"""What a host really runs, asked on the host when a rollout resumes: where its release link points and what the
agent answers on /healthz, in one SSH command.

The two can disagree after a crash: a controller killed after a host's link switched but before its agent
restarted leaves ``current`` on the new release and the old agent running. Such a host is neither done nor failed:
its switch is unfinished, and its wave's agent run finishes it (the role restarts an agent whose running version
differs from the link) before the health gate judges it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .. import remote
from ..errors import RemoteError
from ..inventory import Host, Inventory
from .probe import PROBE, Health, judge

CURRENT = "/opt/sentry/current"
# The link's target on the first line (empty when there is none), then the health probe's code and body.
COMMAND = f"readlink {CURRENT} || true\n{PROBE}"


@dataclass(frozen=True)
class HostState:
    host: str
    link: str | None  # the release ``current`` points at (its directory name), None when unknown
    health: Health  # judged against the target version

    def done(self, version: str) -> bool:
        """Healthy on ``version`` with the link on it too: nothing left to do on this host."""
        return self.health.healthy and self.link in (None, version)

    def half_switched(self, version: str) -> bool:
        """The link is on ``version`` but the agent does not answer for it: the switch was cut short."""
        return self.link == version and not self.health.healthy


def parse(host: str, output: str, version: str) -> HostState:
    first, _, rest = output.partition("\n")
    link = first.strip().rsplit("/", 1)[-1] or None
    return HostState(host, link, judge(host, rest, version))


def read_hosts(inv: Inventory, hosts: Sequence[Host], version: str) -> dict[str, HostState]:
    def one(host: Host) -> HostState:
        try:
            client = remote.connect(inv, host, timeout=10.0)
        except RemoteError as exc:
            return HostState(host.name, None, Health(host.name, False, detail=f"unreachable: {exc.message}"))
        try:
            return parse(host.name, remote.run(client, COMMAND, timeout=20.0).stdout, version)
        except RemoteError as exc:
            return HostState(host.name, None, Health(host.name, False, detail=f"probe failed: {exc.message}"))
        finally:
            client.close()

    def failed(name: str, exc: RemoteError) -> HostState:
        return HostState(name, None, Health(name, False, detail=f"unreachable: {exc}"))

    return remote.parallel(hosts, one, failed)


HostReader = Callable[[Inventory, Sequence[Host], str], dict[str, HostState]]
