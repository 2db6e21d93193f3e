#!/usr/bin/env python3
"""Compare two cryptomon.summary/v1 files value by value (numbers within 1e-9 relative).

compare_summaries.py EXPECTED GOT  -- exit 1 and name the first differences if they disagree.

Only EXPECTED's fields are compared: a field GOT has and EXPECTED lacks (`volatility_rank`, which
the pandas peer does not compute) is named as not compared, never a difference.
"""
import json
import sys


def walk(path, a, b, out, extra):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a:
            if k not in b:
                out.append(f"{path}.{k}: missing")
            else:
                walk(f"{path}.{k}", a[k], b[k], out, extra)
        extra.update(k for k in b if k not in a)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} vs {len(b)} items")
        for i, (x, y) in enumerate(zip(a, b)):
            walk(f"{path}[{i}]", x, y, out, extra)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if abs(a - b) > 1e-9 * max(abs(a), 1e-300):
            out.append(f"{path}: {a} vs {b}")
    elif a != b:
        out.append(f"{path}: {a!r} vs {b!r}")


def main(expected, got):
    a, b = json.load(open(expected)), json.load(open(got))
    out, extra = [], set()
    walk("summary", a, b, out, extra)
    values = sum(1 for s in a["series"] for _ in s) + len(a["spreads"]) * 7 + len(a["alerts"]) * 6
    if out:
        print(f"   DIFFER in {len(out)} places, first: " + "; ".join(out[:5]))
        sys.exit(1)
    print(f"   identical within 1e-9: {len(a['series'])} series, {len(a['spreads'])} spreads, "
          f"{len(a['alerts'])} alerts ({values} values)")
    if extra:
        print(f"   not compared, only in {got}: {', '.join(sorted(extra))}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
