"""Rewrite the golden plans on purpose: ``python -m tests.unit.rollout.regen [CASE ...]``.

Run it after a deliberate change to the planner or to orchestrator/data/tracks.yml, then read the diff
(``git diff tests/unit/rollout/golden``) before keeping it. The tests never write these files.
"""

from __future__ import annotations

import sys

from .cases import GOLDEN, case_names, render, run_case


def main(argv: list[str]) -> int:
    names = argv or case_names()
    unknown = [n for n in names if n not in case_names()]
    if unknown:
        print(f"no such case: {', '.join(unknown)} (cases: {', '.join(case_names())})", file=sys.stderr)
        return 2
    for name in names:
        path = GOLDEN / f"{name}.json"
        text = render(run_case(name))
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old == text:
            print(f"unchanged  {path.name}")
            continue
        path.write_text(text, encoding="utf-8")
        print(f"{'rewrote' if old is not None else 'created'}    {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
