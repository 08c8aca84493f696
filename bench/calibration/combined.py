#!/usr/bin/env python3
"""Detection and false positives of the rules as the scanner applies them.

    combined.py CORPUS_DIR TOOLS_LIST NEGATIVES_LIST POS_SCAN_TSV NEG_SCAN_TSV

POS_SCAN_TSV / NEG_SCAN_TSV: calibration_scan output ("ref\\tquery\\talgorithms"
for every (reference, query) pair the scanner reported evidence for; the
positives file may concatenate several runs, repeated headers are skipped).
The scanner's verdicts come from its defaults: the whole-file rule OR the
.rodata rule (docs/detection.md). Positives and reference sets are those of
analyze.py: the same path in another release, byte-identical pairs left out
(the exact-hash index finds those). Prints Markdown.
"""
import hashlib
import os
import sys

RELEASE_ORDER = ["buster", "bullseye", "bookworm", "trixie", "sid"]


def die(msg):
    print(f"combined: {msg}", file=sys.stderr)
    sys.exit(1)


class Tool:
    def __init__(self, corpus, path):
        rel = os.path.relpath(path, corpus)
        parts = rel.split(os.sep, 2)
        if len(parts) != 3 or rel.startswith(".."):
            die(f"{path} is not CORPUS_DIR/<release>/<package>/<path>")
        self.release, self.package, inner = parts
        self.inner = inner
        self.key = (self.package, inner[4:] if inner.startswith("usr/") else inner)
        with open(path, "rb") as f:
            self.sha256 = hashlib.sha256(f.read()).hexdigest()


def read_list(path):
    try:
        with open(path) as f:
            return [line.rstrip("\n") for line in f if line.strip()]
    except OSError as e:
        die(f"{path}: {e}")


def read_scan(path):
    flagged = {}
    try:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if line == "ref\tquery\talgorithms":
                    continue
                parts = line.split("\t")
                if len(parts) != 3:
                    die(f"{path}: line {n}: want ref, query, algorithms")
                flagged[(parts[0], parts[1])] = set(parts[2].split(","))
    except OSError as e:
        die(f"{path}: {e}")
    return flagged


def pct(n, d, digits=1):
    return "n/a" if d == 0 else f"{100.0 * n / d:.{digits}f} %"


def branch(algorithms):
    """Which rule produced the evidence: whole, rodata or both."""
    rodata = any(a.endswith(":.rodata") for a in algorithms)
    whole = any(a in ("sdbf", "tlsh", "ssdeep") for a in algorithms)
    return "both" if rodata and whole else "rodata" if rodata else "whole" if whole else "exact"


def main(argv):
    if len(argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    corpus, tools_list, neg_list, pos_path, neg_path = argv[1:]
    tools = {p: Tool(corpus, p) for p in read_list(tools_list)}
    negatives = read_list(neg_list)
    pos = read_scan(pos_path)
    neg = read_scan(neg_path)
    releases = sorted({t.release for t in tools.values()},
                      key=lambda r: (RELEASE_ORDER.index(r) if r in RELEASE_ORDER else 99, r))

    pairs = [(r, q) for r in tools for q in tools
             if tools[r].key == tools[q].key and tools[r].release != tools[q].release
             and tools[r].sha256 != tools[q].sha256]
    detected = [p for p in pairs if p in pos and branch(pos[p]) != "exact"]
    by_branch = {}
    for p in detected:
        by_branch[branch(pos[p])] = by_branch.get(branch(pos[p]), 0) + 1

    flagged_neg = {}
    for (r, q), algs in neg.items():
        flagged_neg.setdefault(q, []).append((r, algs))
    neg_branch = {}
    for q, hits in flagged_neg.items():
        b = set()
        for _, algs in hits:
            b.add(branch(algs))
        key = "both" if "both" in b or {"whole", "rodata"} <= b else b.pop()
        neg_branch[key] = neg_branch.get(key, 0) + 1

    print("## The rules as the scanner applies them\n")
    print(f"Reference sets: one malicious set per tool file (`refset build`), queries scanned through "
          f"`scan::Scanner` with the default thresholds (whole-file rule OR `.rodata` rule).\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| other builds detected, per pair (one reference build) | {len(detected)}/{len(pairs)} = "
          f"**{pct(len(detected), len(pairs))}** |")
    print(f"| ... by the whole-file rule only / the `.rodata` rule only / both | "
          f"{by_branch.get('whole', 0)} / {by_branch.get('rodata', 0)} / {by_branch.get('both', 0)} |")
    print(f"| false positives per file ({len(negatives)} negatives, all {len(tools)} tool files as references) | "
          f"{len(flagged_neg)}/{len(negatives)} = **{pct(len(flagged_neg), len(negatives), 3)}** |")
    print(f"| ... by the whole-file rule only / the `.rodata` rule only / both | "
          f"{neg_branch.get('whole', 0)} / {neg_branch.get('rodata', 0)} / {neg_branch.get('both', 0)} |")
    print(f"| false positives per pair | {len(neg)}/{len(negatives) * len(tools)} = "
          f"{pct(len(neg), len(negatives) * len(tools), 4)} |")
    print()

    print("Per reference set (a query counts when a reference of its own path flags it; queries "
          "byte-identical to one of them are left out):\n")
    print("| reference set | queries | detected |")
    print("|---|---|---|")
    sets = [(rel, lambda q, rel=rel: [p for p, t in tools.items() if t.release == rel]) for rel in releases]
    sets.append(("other two", lambda q: [p for p, t in tools.items() if t.release != tools[q].release]))
    for name, refs_of in sets:
        n = det = 0
        for q, tq in tools.items():
            if name != "other two" and tq.release == name:
                continue
            own = [r for r in refs_of(q) if tools[r].key == tq.key and tools[r].release != tq.release]
            if not own or any(tools[r].sha256 == tq.sha256 for r in own):
                continue
            n += 1
            if any((r, q) in pos and branch(pos[(r, q)]) != "exact" for r in own):
                det += 1
        print(f"| {name} | {n} | {det} = {pct(det, n)} |")
    print()

    print("Negative files flagged:\n")
    print("| negative file | flagged by | evidence |")
    print("|---|---|---|")
    for q in sorted(flagged_neg):
        for r, algs in sorted(flagged_neg[q]):
            t = tools[r]
            print(f"| {q} | {t.release}/{t.package}/{t.inner} | {', '.join(sorted(algs))} |")
    print()
    print("Different-build pairs missed:\n")
    print("| package | path | ref -> query |")
    print("|---|---|---|")
    for r, q in sorted(set(pairs) - set(detected), key=lambda p: (tools[p[0]].key, p)):
        print(f"| {tools[r].package} | {tools[r].key[1]} | {tools[r].release} -> {tools[q].release} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
