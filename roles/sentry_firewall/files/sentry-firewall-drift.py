#!/usr/bin/python3
"""Compare the loaded nftables table with what the ruleset file would load; print one JSON line.

Usage: sentry-firewall-drift.py FILE FAMILY TABLE. The file is loaded into a throwaway network namespace
(unshare --net), so the comparison is between two tables nft built itself, not between texts. Dynamic state is
left out on both sides: set elements (bans, rate-limit meters), counters and rule handles. Read-only: nothing
on the host changes. Exit 0 with {"drift": bool, "reason": str}; exit 2 when the comparison itself failed.
"""

import json
import subprocess
import sys

DYNAMIC = {"handle", "elem", "packets", "bytes", "expires", "timeout_left"}


def normalise(value):
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in sorted(value.items()) if k not in DYNAMIC}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def canonical(items):
    """What the table is, whatever order nft lists it in: the declarations (chains, sets, maps) as a sorted list,
    and each chain's rules in their order (the only order that matters). A set deleted and re-created live is
    listed after the others by the kernel and first by a fresh load; that is no drift."""
    declared = sorted(json.dumps(i, sort_keys=True) for i in items if "rule" not in i)
    rules = {}
    for item in items:
        if "rule" in item:
            rule = item["rule"]
            key = "|".join(str(rule.get(k)) for k in ("family", "table", "chain"))
            rules.setdefault(key, []).append(json.dumps(item, sort_keys=True))
    return declared, rules


def table(argv):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        return None, " ".join((proc.stderr or proc.stdout).split())[:300]
    items = [i for i in json.loads(proc.stdout).get("nftables", []) if "metainfo" not in i]
    return normalise(items), ""


def main():
    path, family, name = sys.argv[1:4]
    listing = f"/usr/sbin/nft -j list table {family} {name}"
    want, error = table(["/usr/bin/unshare", "--net", "/bin/sh", "-c", f'/usr/sbin/nft -f "$1" && {listing}', "-", path])
    if want is None:
        print(json.dumps({"drift": True, "reason": f"could not load {path} into a scratch namespace: {error}"}))
        return 2
    live, error = table(listing.split())
    if live is None:
        print(json.dumps({"drift": True, "reason": f"table {family} {name} is not loaded ({error})"}))
        return 0
    if canonical(live) == canonical(want):
        print(json.dumps({"drift": False, "reason": "the loaded table is what the file loads"}))
        return 0
    missing = [json.dumps(i, sort_keys=True) for i in want if i not in live]
    extra = [json.dumps(i, sort_keys=True) for i in live if i not in want]
    reason = f"the loaded table differs from {path}: {len(missing)} object(s) missing, {len(extra)} not in the file"
    if missing:
        reason += f"; first missing: {missing[0][:300]}"
    elif extra:
        reason += f"; first extra: {extra[0][:300]}"
    print(json.dumps({"drift": True, "reason": reason}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
