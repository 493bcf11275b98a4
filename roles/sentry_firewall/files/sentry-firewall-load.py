#!/usr/bin/python3
"""Load a ruleset file, first turning ban sets declared with other flags into what the file declares.

Usage: sentry-firewall-load.py FILE FAMILY TABLE SET... (the ban sets). nft cannot change the flags of an
existing set (the file's declaration fails with "File exists"), and a set cannot be deleted while a rule refers
to it. So when a ban set of the loaded table lacks the "interval" flag the file gives it (tables loaded before
detection packs), the file is loaded in ONE transaction behind a prefix that flushes the table's input chain,
deletes the set and declares it again with its elements and their remaining timeouts: nothing is dropped or let
through in between, and no ban is lost. Without such a set it is a plain "nft -f FILE". Exit code: nft's.
"""

import json
import subprocess
import sys

NFT = "/usr/sbin/nft"


def element(item):
    """One element as nft script text with its remaining timeout; None when it is not an address or prefix."""
    elem = item.get("elem", item) if isinstance(item, dict) else {"val": item}
    val = elem.get("val") if isinstance(elem, dict) else item
    if isinstance(val, dict) and "prefix" in val:
        val = f"{val['prefix']['addr']}/{val['prefix']['len']}"
    if not isinstance(val, str):
        return None
    expires = elem.get("expires") if isinstance(elem, dict) else None
    return f"{val} timeout {max(int(expires), 1)}s" if isinstance(expires, int) else val


def prefix(family, table, names):
    lines = []
    for name in names:
        proc = subprocess.run([NFT, "-j", "list", "set", family, table, name], capture_output=True, text=True,
                              timeout=30, check=False)
        if proc.returncode != 0:
            continue  # no such set (or table) yet: the file creates it
        sets = [i["set"] for i in json.loads(proc.stdout).get("nftables", []) if "set" in i]
        if not sets or "interval" in sets[0].get("flags", []):
            continue
        s = sets[0]
        elements = [e for e in (element(i) for i in s.get("elem", [])) if e]
        if not lines:
            lines.append(f"flush chain {family} {table} input")
        lines.append(f"delete set {family} {table} {name}")
        lines.append(f"add set {family} {table} {name} {{ type {s['type']}; flags interval, timeout; }}")
        if elements:
            lines.append(f"add element {family} {table} {name} {{ {', '.join(elements)} }}")
    return "".join(line + "\n" for line in lines)


def main():
    path, family, table, *names = sys.argv[1:]
    pre = prefix(family, table, names)
    if not pre:
        return subprocess.run([NFT, "-f", path], timeout=60, check=False).returncode
    with open(path, encoding="utf-8") as fh:
        script = pre + fh.read()
    print(f"migrating ban sets to interval sets: {pre.count('delete set')} set(s)", file=sys.stderr)
    return subprocess.run([NFT, "-f", "-"], input=script, text=True, timeout=60, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
