#!/usr/bin/env python3
"""Chooses similarity thresholds from measured scores (docs/detection.md).

    analyze.py CORPUS_DIR POS_TSV NEG_TSV [FP_BUDGET]

CORPUS_DIR  the debian-releases.sh tree: CORPUS_DIR/<release>/<package>/<path>
POS_TSV     similarity_scores tools.list tools.list (every tool file against
            every tool file)
NEG_TSV     similarity_scores tools.list negatives.list
FP_BUDGET   allowed fraction of negative FILES flagged, default 0.001

Positives: the same file (same package, same path; /bin and /usr/bin are the
same path on merged-/usr systems) of two different releases. Byte-identical
pairs are counted apart: the exact-hash index finds those, so they are not a
test of the similarity rule. A negative file counts as a false positive when
any reference file flags it (per file); per pair rates are shown as well.

A rule flags a (reference, query) pair when the size gate passes
(max(size)/min(size) <= ratio) and
    sdbf >= sdbf_min  OR  tlsh <= tlsh_max  OR  ssdeep >= ssdeep_min
(any term may be off). Thresholds are searched with every tool file of every
release as the reference set, which flags the most negatives; the best
combined rule's thresholds are then centred in the gap between the closest
positive they would lose and the closest negative they would gain (see
centre()), rather than left on the edge of the positives.

Prints Markdown: distributions, the chosen thresholds and their rates.
"""
import csv
import hashlib
import os
import sys

RELEASE_ORDER = ["buster", "bullseye", "bookworm", "trixie", "sid"]
OFF = None
RATIO_GATES = [OFF, 4.0, 2.0, 1.5]


def die(msg):
    print(f"analyze: {msg}", file=sys.stderr)
    sys.exit(1)


class Tool:
    def __init__(self, corpus, path):
        rel = os.path.relpath(path, corpus)
        parts = rel.split(os.sep, 2)
        if len(parts) != 3 or rel.startswith(".."):
            die(f"{path} is not CORPUS_DIR/<release>/<package>/<path>")
        self.release, self.package, inner = parts
        # usrmerge: /bin/x in one release is /usr/bin/x in the next.
        self.key = (self.package, inner[4:] if inner.startswith("usr/") else inner)
        with open(path, "rb") as f:
            self.sha256 = hashlib.sha256(f.read()).hexdigest()


def parse_int(text):
    return None if text == "NA" else int(text)


def load_rows(path):
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f, delimiter="\t")
            want = ["ref", "query", "ref_size", "query_size", "sdbf", "tlsh", "ssdeep"]
            if reader.fieldnames != want:
                die(f"{path}: header {reader.fieldnames}, want {want}")
            rows = []
            for r in reader:
                rows.append((r["ref"], r["query"], int(r["ref_size"]), int(r["query_size"]),
                             parse_int(r["sdbf"]), parse_int(r["tlsh"]), parse_int(r["ssdeep"])))
            return rows
    except (OSError, ValueError, KeyError) as e:
        die(f"{path}: {e}")


def gate_ok(ratio, ref_size, query_size):
    if ratio is OFF:
        return True
    lo, hi = min(ref_size, query_size), max(ref_size, query_size)
    return lo > 0 and hi <= ratio * lo


class Rule:
    def __init__(self, sdbf_min, tlsh_max, ssdeep_min, ratio):
        self.sdbf_min, self.tlsh_max, self.ssdeep_min, self.ratio = sdbf_min, tlsh_max, ssdeep_min, ratio

    def flags(self, row):
        _, _, rs, qs, s, t, c = row
        if not gate_ok(self.ratio, rs, qs):
            return False
        return ((self.sdbf_min is not OFF and s is not None and s >= self.sdbf_min)
                or (self.tlsh_max is not OFF and t is not None and t <= self.tlsh_max)
                or (self.ssdeep_min is not OFF and c is not None and c >= self.ssdeep_min))

    def describe(self):
        terms = []
        if self.sdbf_min is not OFF:
            terms.append(f"sdbf >= {self.sdbf_min}")
        if self.tlsh_max is not OFF:
            terms.append(f"tlsh <= {self.tlsh_max}")
        if self.ssdeep_min is not OFF:
            terms.append(f"ssdeep >= {self.ssdeep_min}")
        text = " OR ".join(terms) if terms else "(nothing)"
        if self.ratio is not OFF:
            text = f"size ratio <= {self.ratio:g} AND ({text})"
        return text


def pct(n, d):
    return "n/a" if d == 0 else f"{100.0 * n / d:.1f} %"


def pct_fine(n, d):
    return "n/a" if d == 0 else f"{100.0 * n / d:.3f} %"


# --- per-file aggregates and bit masks for the threshold search ---------------

class Aggregates:
    """Per unit (negative file or positive query): best sdbf, best tlsh, best
    ssdeep over its pairs that pass the size gate. A unit is flagged by a rule
    iff one of its pairs is, because the rule is an OR of per-score tests."""

    def __init__(self, groups, ratio):
        self.n = len(groups)
        self.sdbf, self.tlsh, self.ssdeep = [], [], []
        for rows in groups:
            s = t = c = None
            for row in rows:
                _, _, rs, qs, rs_s, rt, rc = row
                if not gate_ok(ratio, rs, qs):
                    continue
                if rs_s is not None and (s is None or rs_s > s):
                    s = rs_s
                if rt is not None and (t is None or rt < t):
                    t = rt
                if rc is not None and (c is None or rc > c):
                    c = rc
            self.sdbf.append(s)
            self.tlsh.append(t)
            self.ssdeep.append(c)
        # mask_x[v] = units whose best score passes threshold v (bit i = unit i).
        self.mask_sdbf = self._masks(self.sdbf, range(0, 102), lambda v, th: v >= th)
        self.mask_ssdeep = self._masks(self.ssdeep, range(0, 102), lambda v, th: v >= th)
        self.mask_tlsh = self._masks(self.tlsh, range(0, 401), lambda v, th: v <= th)

    @staticmethod
    def _masks(values, thresholds, passes):
        out = {}
        for th in thresholds:
            m = 0
            for i, v in enumerate(values):
                if v is not None and passes(v, th):
                    m |= 1 << i
            out[th] = m
        return out

    def mask(self, rule):
        m = 0
        if rule.sdbf_min is not OFF:
            m |= self.mask_sdbf[rule.sdbf_min]
        if rule.tlsh_max is not OFF:
            m |= self.mask_tlsh[rule.tlsh_max]
        if rule.ssdeep_min is not OFF:
            m |= self.mask_ssdeep[rule.ssdeep_min]
        return m


def search(pos, neg, budget, ratios):
    """Best rules under the budget (negative units flagged <= budget): per single
    algorithm and combined. Ties on detected positives go to fewer flagged
    negatives, then to thresholds farther inside (higher sdbf/ssdeep minimum,
    lower tlsh maximum)."""
    best = {}
    for ratio in ratios:
        p, n = pos[ratio], neg[ratio]
        cands = []
        # sdbf and ssdeep minimums: 1..101 (101 = off in effect); tlsh: largest
        # maximum that keeps the union within budget, then the smallest one that
        # detects as many positives.
        for a in list(range(1, 101)) + [OFF]:
            for c in list(range(1, 101)) + [OFF]:
                base = Rule(a, OFF, c, ratio)
                bm = n.mask(base)
                if bm.bit_count() > budget:
                    continue
                lo, hi = -1, 400
                if (bm | n.mask_tlsh[0]).bit_count() > budget:
                    hi = -1
                else:
                    lo = 0
                    while lo < hi:
                        mid = (lo + hi + 1) // 2
                        if (bm | n.mask_tlsh[mid]).bit_count() <= budget:
                            lo = mid
                        else:
                            hi = mid - 1
                b = OFF if lo < 0 else lo
                rule = Rule(a, b, c, ratio)
                tp = p.mask(rule).bit_count()
                if b is not OFF:
                    # Tighten tlsh to the smallest maximum with the same detections.
                    lo2, hi2 = 0, b
                    while lo2 < hi2:
                        mid = (lo2 + hi2) // 2
                        if (p.mask(Rule(a, mid, c, ratio))).bit_count() >= tp:
                            hi2 = mid
                        else:
                            lo2 = mid + 1
                    rule = Rule(a, lo2, c, ratio)
                fp = n.mask(rule).bit_count()
                cands.append((rule, tp, fp))
                # The same minimums without tlsh (single-algorithm rules).
                cands.append((base, p.mask(base).bit_count(), bm.bit_count()))
        for rule, tp, fp in cands:
            used = tuple(x is not OFF for x in (rule.sdbf_min, rule.tlsh_max, rule.ssdeep_min))
            kinds = ["combined"]
            if used == (True, False, False):
                kinds.append("sdbf")
            if used == (False, True, False):
                kinds.append("tlsh")
            if used == (False, False, True):
                kinds.append("ssdeep")
            for kind in kinds:
                key = (kind, ratio)
                score = (tp, -fp,
                         rule.sdbf_min if rule.sdbf_min is not OFF else 1000,
                         -(rule.tlsh_max if rule.tlsh_max is not OFF else -1),
                         rule.ssdeep_min if rule.ssdeep_min is not OFF else 1000)
                if key not in best or score > best[key][0]:
                    best[key] = (score, rule, tp, fp)
    return best


def centre(rule, p, n):
    """Moves each threshold of `rule` to the middle of the range of values that
    flag exactly the same positive and negative units (with the other
    thresholds fixed): the widest margin to both the closest positive left
    out and the closest negative, instead of sitting on either edge."""
    rule = Rule(rule.sdbf_min, rule.tlsh_max, rule.ssdeep_min, rule.ratio)
    for field, lo_limit, hi_limit in (("sdbf_min", 1, 100), ("ssdeep_min", 1, 100), ("tlsh_max", 0, 400)):
        v0 = getattr(rule, field)
        if v0 is OFF:
            continue
        want = (p.mask(rule), n.mask(rule))

        def same(v):
            setattr(rule, field, v)
            ok = (p.mask(rule), n.mask(rule)) == want
            setattr(rule, field, v0)
            return ok

        lo = v0
        while lo - 1 >= lo_limit and same(lo - 1):
            lo -= 1
        hi = v0
        while hi + 1 <= hi_limit and same(hi + 1):
            hi += 1
        # Odd-sized ranges round towards the stricter side.
        setattr(rule, field, (lo + hi + 1) // 2 if field != "tlsh_max" else (lo + hi) // 2)
    return rule


# --- text output ---------------------------------------------------------------

def percentiles(values, qs):
    v = sorted(values)
    out = []
    for q in qs:
        if not v:
            out.append("-")
            continue
        i = min(len(v) - 1, max(0, int(round(q / 100.0 * (len(v) - 1)))))
        out.append(str(v[i]))
    return out


def histogram(values, edges, label, width=40):
    """Rows: bucket, count, share, bar. edges are inclusive lower bounds."""
    counts = [0] * len(edges)
    na = 0
    for x in values:
        if x is None:
            na += 1
            continue
        for i in range(len(edges) - 1, -1, -1):
            if x >= edges[i]:
                counts[i] += 1
                break
    total = len(values)
    peak = max(counts + [na, 1])
    lines = [f"{label:>9} | {'files/pairs':>11} | share   |"]
    for i, e in enumerate(edges):
        hi = edges[i + 1] - 1 if i + 1 < len(edges) else None
        name = f"{e}" if hi == e else (f"{e}-{hi}" if hi is not None else f">={e}")
        bar = "#" * max(1 if counts[i] else 0, round(width * counts[i] / peak))
        lines.append(f"{name:>9} | {counts[i]:>11} | {100.0 * counts[i] / total:6.2f}% | {bar}".rstrip())
    if na:
        bar = "#" * max(1, round(width * na / peak))
        lines.append(f"{'NA':>9} | {na:>11} | {100.0 * na / total:6.2f}% | {bar}")
    return "\n".join(lines)


SDBF_EDGES = [0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100]
TLSH_EDGES = [0, 1, 20, 30, 40, 50, 60, 70, 80, 100, 120, 150, 200, 300]
SSDEEP_EDGES = [0, 1, 20, 30, 40, 50, 60, 80, 100]


def main(argv):
    if len(argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    corpus, pos_path, neg_path = argv[1:4]
    try:
        fp_budget = float(argv[4]) if len(argv) == 5 else 0.001
    except ValueError:
        die(f"FP_BUDGET {argv[4]!r} is not a number")
    if not 0 <= fp_budget < 1:
        die(f"FP_BUDGET {fp_budget} is not a fraction in [0, 1)")

    pos_rows = load_rows(pos_path)
    neg_rows = load_rows(neg_path)
    tool_paths = sorted({r[0] for r in pos_rows} | {r[1] for r in pos_rows} | {r[0] for r in neg_rows})
    tools = {p: Tool(corpus, p) for p in tool_paths}
    releases = sorted({t.release for t in tools.values()},
                      key=lambda r: (RELEASE_ORDER.index(r) if r in RELEASE_ORDER else 99, r))

    # Positive pairs: same key, different release.
    pairs = [r for r in pos_rows
             if tools[r[0]].key == tools[r[1]].key and tools[r[0]].release != tools[r[1]].release]
    identical = [r for r in pairs if tools[r[0]].sha256 == tools[r[1]].sha256]
    similar = [r for r in pairs if tools[r[0]].sha256 != tools[r[1]].sha256]
    neg_files = sorted({r[1] for r in neg_rows})
    neg_by_file = {}
    for r in neg_rows:
        neg_by_file.setdefault(r[1], []).append(r)
    neg_groups = [neg_by_file[f] for f in neg_files]
    budget = int(fp_budget * len(neg_files) + 1e-9)

    print("## Corpus\n")
    print(f"- tool files (ELF): {len(tools)} in {len(releases)} releases ({', '.join(releases)}), "
          f"{len({t.key for t in tools.values()})} distinct paths in "
          f"{len({t.package for t in tools.values()})} packages")
    print(f"- positive pairs (same path, different release, ordered): {len(pairs)}; "
          f"byte-identical: {len(identical)} (exact-hash matches, left out below); "
          f"**different builds: {len(similar)}**")
    print(f"- negative files (distinct ELF files of this machine): {len(neg_files)}; "
          f"negative pairs (every tool file against every negative file): {len(neg_rows)}")
    print(f"- false-positive budget: {fp_budget * 100:g} % of negative files = at most {budget} files\n")

    # --- distributions ---------------------------------------------------------
    print("## Score distributions\n")
    qs = [0, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100]
    print("Percentiles (nearest rank). Positives: pairs of different builds. Negatives per pair: every "
          "(tool file, negative file) pair. Negatives per file: the closest tool file "
          "(highest sdbf / ssdeep, lowest tlsh) for each negative file; no size gate. "
          "NA pairs (no digest: sdbf below 512 bytes, tlsh below 256 bytes or too "
          "uniform) are left out.\n")
    print("| set | algorithm | n | " + " | ".join(f"p{q:g}" for q in qs) + " |")
    print("|---|---|---|" + "---|" * len(qs))
    agg_all = Aggregates(neg_groups, OFF)
    for name, rows in (("positives", similar), ("negatives per pair", neg_rows)):
        for alg, idx in (("sdbf", 4), ("tlsh", 5), ("ssdeep", 6)):
            vals = [r[idx] for r in rows if r[idx] is not None]
            print(f"| {name} | {alg} | {len(vals)} | " + " | ".join(percentiles(vals, qs)) + " |")
    for alg, vals in (("sdbf", agg_all.sdbf), ("tlsh", agg_all.tlsh), ("ssdeep", agg_all.ssdeep)):
        v = [x for x in vals if x is not None]
        print(f"| negatives per file | {alg} | {len(v)} | " + " | ".join(percentiles(v, qs)) + " |")
    print()

    print("Histograms (positives = pairs of different builds; negatives = per file, the "
          "closest tool file, no size gate):\n")
    print("```")
    for alg, idx, edges, negvals in (("sdbf", 4, SDBF_EDGES, agg_all.sdbf),
                                     ("tlsh", 5, TLSH_EDGES, agg_all.tlsh),
                                     ("ssdeep", 6, SSDEEP_EDGES, agg_all.ssdeep)):
        print(f"{alg}, positives ({len(similar)} pairs)")
        print(histogram([r[idx] for r in similar], edges, alg))
        print(f"{alg}, negatives ({len(neg_files)} files, closest tool file)")
        print(histogram(negvals, edges, alg))
        print()
    print("```\n")

    print("Closest negative files (no size gate):\n")
    print("| negative file | size | best sdbf | best tlsh | best ssdeep |")
    print("|---|---|---|---|---|")
    size_of = {r[1]: r[3] for r in neg_rows}
    shown = set()
    for key in (lambda i: -(agg_all.sdbf[i] or -1), lambda i: agg_all.tlsh[i] if agg_all.tlsh[i] is not None else 10**9,
                lambda i: -(agg_all.ssdeep[i] or 0)):
        for i in sorted(range(len(neg_files)), key=key)[:6]:
            if i in shown:
                continue
            shown.add(i)
            print(f"| {neg_files[i]} | {size_of[neg_files[i]]} | {agg_all.sdbf[i]} | {agg_all.tlsh[i]} | "
                  f"{agg_all.ssdeep[i]} |")
    print()

    # --- threshold search --------------------------------------------------------
    # Unit of TP in the search: a positive pair (reference build, other build).
    pos_groups = [[r] for r in similar]
    pos_agg = {g: Aggregates(pos_groups, g) for g in RATIO_GATES}
    neg_agg = {g: (agg_all if g is OFF else Aggregates(neg_groups, g)) for g in RATIO_GATES}
    best = search(pos_agg, neg_agg, budget, RATIO_GATES)

    print("## Threshold search\n")
    print(f"Reference set: all {len(tools)} tool files. For each size gate and algorithm, the "
          f"thresholds that detect the most different-build pairs while flagging at most "
          f"{budget} of {len(neg_files)} negative files.\n")
    print("| size gate | algorithms | rule | TP (pairs) | FP files | FP pairs |")
    print("|---|---|---|---|---|---|")
    for ratio in RATIO_GATES:
        for kind in ("sdbf", "tlsh", "ssdeep", "combined"):
            if (kind, ratio) not in best:
                print(f"| {'none' if ratio is OFF else f'<= {ratio:g}'} | {kind} | no rule within budget | | | |")
                continue
            _, rule, tp, fp = best[(kind, ratio)]
            fpp = sum(1 for r in neg_rows if rule.flags(r))
            print(f"| {'none' if ratio is OFF else f'<= {ratio:g}'} | {kind} | {rule.describe()} | "
                  f"{tp}/{len(similar)} = {pct(tp, len(similar))} | {fp}/{len(neg_files)} = "
                  f"{pct_fine(fp, len(neg_files))} | {fpp}/{len(neg_rows)} = {pct_fine(fpp, len(neg_rows))} |")
    print()

    # The chosen rule: the best combined one over all gates; ties go to no gate
    # or the loosest gate (fewer assumptions about the query).
    chosen_key = max((k for k in best if k[0] == "combined"),
                     key=lambda k: (best[k][0], float("inf") if k[1] is OFF else k[1]))
    chosen = centre(best[chosen_key][1], pos_agg[chosen_key[1]], neg_agg[chosen_key[1]])
    print(f"**Chosen rule:** `{chosen.describe()}`\n")

    # --- sensitivity ------------------------------------------------------------------
    print("Sensitivity: the chosen rule with one threshold moved (all tool files as references; "
          "\"closest negative\" = the best score any negative file reaches under the size gate):\n")
    print("| threshold | value | TP (pairs) | FP files |")
    print("|---|---|---|---|")
    pa, na = pos_agg[chosen.ratio], neg_agg[chosen.ratio]
    steps = {"sdbf_min": (-10, -5, 0, 5, 10), "tlsh_max": (-40, -20, -10, 0, 10, 20),
             "ssdeep_min": (-10, -5, 0, 5, 10)}
    for field, deltas in steps.items():
        base = getattr(chosen, field)
        if base is OFF:
            continue
        for d in deltas:
            v = base + d
            if not (1 <= v <= 100 if field != "tlsh_max" else 0 <= v <= 400):
                continue
            rule = Rule(chosen.sdbf_min, chosen.tlsh_max, chosen.ssdeep_min, chosen.ratio)
            setattr(rule, field, v)
            tp, fp = pa.mask(rule).bit_count(), na.mask(rule).bit_count()
            mark = " (chosen)" if d == 0 else ""
            print(f"| {field} | {v}{mark} | {tp}/{len(similar)} = {pct(tp, len(similar))} | {fp} |")
    closest = (max((x for x in na.sdbf if x is not None), default=None),
               min((x for x in na.tlsh if x is not None), default=None),
               max((x for x in na.ssdeep if x is not None), default=None))
    print(f"\nClosest negative under the size gate: sdbf {closest[0]}, tlsh {closest[1]}, ssdeep {closest[2]}.\n")

    # --- evaluation per reference release ------------------------------------------
    print("## Rates of the chosen rule per reference set\n")
    print("Reference set = the tool files of one release (or, for \"other two\", of every release "
          "but the query's own). Queries = the other releases' builds of the same paths, byte-identical "
          "ones left out. A query counts as detected when its own counterpart flags it "
          "(\"own\") or when any reference file flags it (\"any\"). FP per file = negative files "
          "flagged by any reference file of the set; FP per pair = flagged (reference, negative) pairs.\n")
    print("| reference set | queries | detected (own) | detected (any) | per algorithm (own): sdbf / tlsh / ssdeep | FP files | FP pairs |")
    print("|---|---|---|---|---|---|---|")
    by_release = {}
    for p, t in tools.items():
        by_release.setdefault(t.release, []).append(p)
    singles = {}
    for alg in ("sdbf", "tlsh", "ssdeep"):
        singles[alg] = Rule(chosen.sdbf_min if alg == "sdbf" else OFF,
                            chosen.tlsh_max if alg == "tlsh" else OFF,
                            chosen.ssdeep_min if alg == "ssdeep" else OFF, chosen.ratio)
    pos_by_pair = {(r[0], r[1]): r for r in pos_rows}
    ref_sets = [(rel, lambda q, rel=rel: set(by_release[rel])) for rel in releases]
    ref_sets.append(("other two", lambda q: {p for p, t in tools.items() if t.release != tools[q].release}))
    for name, refs_for in ref_sets:
        queries = []
        for q, tq in tools.items():
            refs = refs_for(q)
            if q in refs:
                continue
            own = [r for r in refs if tools[r].key == tq.key]
            if not own or any(tools[r].sha256 == tq.sha256 for r in own):
                continue
            queries.append((q, refs, own))
        det_own = det_any = 0
        per_alg = {a: 0 for a in singles}
        for q, refs, own in queries:
            own_rows = [pos_by_pair[(r, q)] for r in own]
            if any(chosen.flags(x) for x in own_rows):
                det_own += 1
            if any(chosen.flags(pos_by_pair[(r, q)]) for r in refs):
                det_any += 1
            for a, rule in singles.items():
                if any(rule.flags(x) for x in own_rows):
                    per_alg[a] += 1
        # For the negatives, one reference set per release (the "other two" sets
        # are subsets of all tool files, whose figures are in the search table).
        if name in by_release:
            refs = set(by_release[name])
            fp_files = sum(1 for g in neg_groups if any(chosen.flags(r) for r in g if r[0] in refs))
            fp_pairs = sum(1 for r in neg_rows if r[0] in refs and chosen.flags(r))
            n_pairs = sum(1 for r in neg_rows if r[0] in refs)
            fp_text = (f"{fp_files}/{len(neg_files)} = {pct_fine(fp_files, len(neg_files))} | "
                       f"{fp_pairs}/{n_pairs} = {pct_fine(fp_pairs, n_pairs)}")
        else:
            fp_files = sum(1 for g in neg_groups if any(chosen.flags(r) for r in g))
            fp_pairs = sum(1 for r in neg_rows if chosen.flags(r))
            fp_text = (f"{fp_files}/{len(neg_files)} = {pct_fine(fp_files, len(neg_files))} (all tool files) | "
                       f"{fp_pairs}/{len(neg_rows)} = {pct_fine(fp_pairs, len(neg_rows))}")
        n = len(queries)
        print(f"| {name} | {n} | {det_own} = {pct(det_own, n)} | {det_any} = {pct(det_any, n)} | "
              f"{per_alg['sdbf']} / {per_alg['tlsh']} / {per_alg['ssdeep']} | {fp_text} |")
    print()

    # --- missed positives ------------------------------------------------------------
    print("Different-build pairs the chosen rule misses (reference release -> query release):\n")
    print("| package | path | ref -> query | sizes | sdbf | tlsh | ssdeep |")
    print("|---|---|---|---|---|---|---|")
    for r in sorted(similar, key=lambda r: (tools[r[0]].key, tools[r[0]].release, tools[r[1]].release)):
        if chosen.flags(r):
            continue
        a, b = tools[r[0]], tools[r[1]]
        print(f"| {a.package} | {a.key[1]} | {a.release} -> {b.release} | {r[2]} / {r[3]} | "
              f"{'NA' if r[4] is None else r[4]} | {'NA' if r[5] is None else r[5]} | {'NA' if r[6] is None else r[6]} |")
    print()

    print("Negative files the chosen rule flags (all tool files as references):\n")
    print("| negative file | size | flagged by | sdbf | tlsh | ssdeep |")
    print("|---|---|---|---|---|---|")
    flagged = 0
    for g in neg_groups:
        for r in g:
            if chosen.flags(r):
                flagged += 1
                print(f"| {r[1]} | {r[3]} | {os.path.relpath(r[0], corpus)} | "
                      f"{'NA' if r[4] is None else r[4]} | {'NA' if r[5] is None else r[5]} | "
                      f"{'NA' if r[6] is None else r[6]} |")
    if flagged == 0:
        print("| (none) | | | | | |")
    print()

    # --- two-fold check on the negatives ----------------------------------------------
    print("## Held-out check\n")
    print("The negatives split in two halves (alternate files in path order). Thresholds chosen "
          "on one half with the same budget fraction, false positives counted on the other:\n")
    print("| chosen on | rule | TP (pairs) | FP files on the other half |")
    print("|---|---|---|---|")
    for half in (0, 1):
        train = [g for i, g in enumerate(neg_groups) if i % 2 == half]
        test = [g for i, g in enumerate(neg_groups) if i % 2 != half]
        b = int(fp_budget * len(train) + 1e-9)
        train_agg = Aggregates(train, chosen.ratio)
        res = search({chosen.ratio: pos_agg[chosen.ratio]}, {chosen.ratio: train_agg}, b, [chosen.ratio])
        rule = centre(res[("combined", chosen.ratio)][1], pos_agg[chosen.ratio], train_agg)
        tp = pos_agg[chosen.ratio].mask(rule).bit_count()
        fp = sum(1 for g in test if any(rule.flags(r) for r in g))
        print(f"| half {half} ({len(train)} files, budget {b}) | {rule.describe()} | "
              f"{tp}/{len(similar)} = {pct(tp, len(similar))} | {fp}/{len(test)} = {pct_fine(fp, len(test))} |")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
