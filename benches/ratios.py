#!/usr/bin/env python3
"""Prints rust-rpc / prost time ratios from criterion's results (median estimates).

Usage: python3 benches/ratios.py [target/criterion]
A ratio below 1.00 means rust-rpc is faster; "speed-up" is prost's time over ours.
"""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")


def median_ns(group, op, side):
    path = root / group / op / side / "new" / "estimates.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["median"]["point_estimate"]


print(f"| data set | operation | rust-rpc | prost | ours/prost | speed-up |")
print(f"| --- | --- | ---: | ---: | ---: | ---: |")
for group in sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "report"):
    for op in ("decode", "encode", "encoded_len"):
        ours = median_ns(group, op, "rust-rpc")
        theirs = median_ns(group, op, "prost")
        if ours is None or theirs is None:
            continue
        print(f"| {group} | {op} | {ours:,.0f} ns | {theirs:,.0f} ns | {ours / theirs:.2f} | {theirs / ours:.2f}x |")
