"""Banning: the never-ban policy and the nftables command.

The mechanism is a plain callable ``(ip, seconds) -> None`` that raises on failure, so tests (and any future
non-nft backend) can inject their own. :class:`NftBanner` is the production one::

    nft add element inet sentry banned_v4 { 203.0.113.7 timeout 600s }

run with an argument list (no shell) and a timeout. ``add`` is idempotent for an element that is already in
the set, so a repeated ban is harmless. The table and sets are created by the ``sentry_firewall`` role. The sets
are interval sets (a detection pack's blocklist puts networks in them), and nft refuses an address inside a
network already there ("interval overlaps"): that address is already blocked, so the ban counts as done.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .config import AgentConfig, IPNetwork
from .detect import IPAddress
from .nft import NftError, run_nft

__all__ = ["BanError", "BanFunc", "BanManager", "BanOutcome", "BanResult", "NftBanner"]

BanFunc = Callable[[IPAddress, int], None]
# What nft says when the element falls inside one already in an interval set.
OVERLAP_ERROR = "interval overlaps with an existing one"


class BanError(Exception):
    """A ban could not be applied; the message is one line for last_error."""


class BanOutcome(enum.Enum):
    BANNED = "banned"
    RECORDED = "recorded"  # ban_command_enabled is false: detection recorded, firewall untouched
    SUPPRESSED = "suppressed"  # the address is in never_ban
    FAILED = "failed"


@dataclass(frozen=True)
class BanResult:
    outcome: BanOutcome
    error: str | None = None


class NftBanner:
    def __init__(
        self,
        *,
        family: str = "inet",
        table: str = "sentry",
        set_v4: str = "banned_v4",
        set_v6: str = "banned_v6",
        nft_binary: Path = Path("/usr/sbin/nft"),
        timeout: float = 5.0,
    ) -> None:
        self.family, self.table, self.set_v4, self.set_v6 = family, table, set_v4, set_v6
        self.nft_binary = nft_binary
        self.timeout = timeout

    @classmethod
    def from_config(cls, config: AgentConfig) -> NftBanner:
        return cls(
            family=config.nft_table_family,
            table=config.nft_table,
            set_v4=config.nft_set_v4,
            set_v6=config.nft_set_v6,
            nft_binary=config.nft_binary,
            timeout=config.ban_timeout_seconds,
        )

    def argv(self, ip: IPAddress, seconds: int) -> list[str]:
        set_name = self.set_v4 if ip.version == 4 else self.set_v6
        element = ["{", str(ip), "timeout", f"{seconds}s", "}"]
        return [str(self.nft_binary), "add", "element", self.family, self.table, set_name, *element]

    def __call__(self, ip: IPAddress, seconds: int) -> None:
        argv = self.argv(ip, seconds)
        try:
            run_nft(self.nft_binary, argv[1:], timeout=self.timeout, what=f"banning {ip}")
        except NftError as exc:
            if OVERLAP_ERROR in str(exc):
                return  # inside a blocklisted network: dropped already, until the network's entry expires
            raise BanError(str(exc)) from None


class BanManager:
    """Applies the never-ban policy, then the ban mechanism; never raises."""

    def __init__(
        self,
        ban_func: BanFunc | None,
        never_ban: Iterable[IPNetwork],
        *,
        enabled: bool = True,
    ) -> None:
        self._ban_func = ban_func
        self._never_ban = tuple(never_ban)
        self._enabled = enabled and ban_func is not None

    def protected(self, ip: IPAddress) -> bool:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self._never_ban)

    def ban(self, ip: IPAddress, seconds: int) -> BanResult:
        if self.protected(ip):
            return BanResult(BanOutcome.SUPPRESSED)
        if not self._enabled or self._ban_func is None:
            return BanResult(BanOutcome.RECORDED)
        try:
            self._ban_func(ip, seconds)
        except Exception as exc:  # an injected or future backend must not take the daemon down
            return BanResult(BanOutcome.FAILED, str(exc) or type(exc).__name__)
        return BanResult(BanOutcome.BANNED)
