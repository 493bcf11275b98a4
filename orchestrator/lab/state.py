"""The lab's own bookkeeping: what it created, persisted after every change so ``lab down`` can undo it all."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LabError
from .proc import ProcRef

NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,11}\Z")


def validate_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise LabError(
            f"invalid lab name {name!r}",
            hint="use 1-12 lowercase letters and digits, starting with a letter",
        )
    return name


def lab_id(lab_dir: Path) -> str:
    """A short id, unique per lab directory, used in every kernel-object name the lab creates."""
    return hashlib.sha256(str(lab_dir.resolve()).encode()).hexdigest()[:6]


@dataclass
class HostState:
    name: str
    index: int
    address: str
    netns: str
    veth: str
    machine: str
    cgroup: str
    root: str  # the mounted overlay
    host_key_pub: str  # "ssh-ed25519 AAAA..."
    proc: dict[str, int] | None = None

    @property
    def proc_ref(self) -> ProcRef | None:
        return ProcRef.from_json(self.proc)


@dataclass
class LabState:
    name: str
    id: str
    subnet: str
    bridge: str
    image: str  # root of the base image the overlays sit on
    repo: str
    repo_port: int
    inventory_dir: str
    repo_proc: dict[str, int] | None = None
    hosts: dict[str, HostState] = field(default_factory=dict)

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabState:
        hosts = {k: HostState(**v) for k, v in data.pop("hosts", {}).items()}
        return cls(**data, hosts=hosts)


def load(path: Path) -> LabState | None:
    if not path.exists():
        return None
    try:
        return LabState.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError, KeyError) as exc:
        raise LabError(
            f"lab state {path} is unreadable: {exc}",
            hint="remove the lab by hand or restore the file; 'lab down' needs it to undo what the lab made",
        ) from exc


def save(path: Path, state: LabState) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)  # a crash leaves either the old or the new state, never half of one
