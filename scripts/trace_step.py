#!/usr/bin/env python3
"""trace_step.py — where a decode step's time goes, from the block timings of
QJ_TRACE=FILE qjit bench --device cuda (kernels built with the hooks of
templates/qj_pdl.cuh; compiler/gpu_bench.c traces eight steps after the timed
ones). Usage: scripts/trace_step.py FILE

Every block records the global timer just before griddepcontrol.wait and just
after. A kernel's wait returns only once the kernel before it in the stream
has finished, so sorted by the time after the wait, the blocks fall into the
launches in stream order; a launch's blocks are the run of blocks of one
module, grid size and block size. For each launch: its release (the first
block past the wait) and the next launch's release; their difference is what
the launch costs in the step (its work after the wait, plus the handover to
the next kernel). Printed per kind of launch, summed over the traced steps
and divided by their number."""
import collections
import re
import sys


def matmul_kind(mod, grid):
    m = re.search(r"_n(\d+)_k(\d+)_", mod)
    # (a grid of a few blocks: the module's activation prep, where no ops kernel wrote it; a tail: the RMSNorm or
    # SwiGLU the matmul's blocks do after it, compiler/cuda_codegen.c)
    tail = " +rmsnorm" if re.search(r"_tn\d", mod) else " +swiglu" if "_tsp" in mod else ""
    return (("matmul %sx%s" % (m.group(1), m.group(2)) if m else mod[:40]) + tail +
            (" (grid %d)" % grid if grid < 16 else ""))


def main(path):
    names, ev = {}, []
    for line in open(path):
        if line.startswith("# module "):
            _, _, j, name = line.split(None, 3)
            names[int(j)] = name.strip()
        elif not line.startswith("#") and line.strip():
            f = list(map(int, line.split()))
            t0, t1, mod, grid, thr, sm = f[:6]
            kind = f[6] if len(f) > 6 else -1  # (traces before the kind column: -1)
            ev.append((t1, t0, mod, grid, thr, kind, sm))
    if not ev:
        sys.exit("%s: no block events (was the run built with QJ_TRACE set?)" % path)
    ev.sort()
    launches = []  # [key, [events]]
    for e in ev:
        key = e[2:6]
        if launches and launches[-1][0] == key and len(launches[-1][1]) < key[1]:
            launches[-1][1].append(e)
        else:
            launches.append([key, [e]])
    short = sum(1 for k, b in launches if len(b) != k[1])
    # the ops module's launches: by the kind each block recorded; in traces without it, by their place in a step
    # (every RMSNorm and SwiGLU a launch of its own): the embedding is the one an ops launch follows directly
    # (RMSNorm); from it, ops launches 1, 3, 5, ... are RMSNorm, 2, 6, 10, ... attention, 4, 8, ... SwiGLU
    is_ops = [names.get(key[0], "").startswith("qj_ops") for key, b in launches]
    kinds = {1: "embed", 2: "rmsnorm", 3: "attention", 4: "swiglu"}
    ops_kind, n = {}, -1
    for i, o in enumerate(is_ops):
        if not o:
            continue
        if launches[i][0][3] in kinds:
            ops_kind[i] = kinds[launches[i][0][3]]
            continue
        if i + 1 < len(launches) and is_ops[i + 1] or n < 0:
            n = 0
        else:
            n += 1
        ops_kind[i] = "embed" if n == 0 else "rmsnorm" if n % 2 else "attention" if n % 4 == 2 else "swiglu"
    cost = collections.defaultdict(list)
    spread = collections.defaultdict(list)
    for i, (key, b) in enumerate(launches):
        mod, grid, thr, _ = key
        name = names.get(mod, "?")
        k = ops_kind[i] if is_ops[i] else matmul_kind(name, grid)
        rel = b[0][0]
        if i + 1 < len(launches):
            cost[k].append(launches[i + 1][1][0][0] - rel)
            spread[k].append(b[-1][0] - rel)
    total = launches[-1][1][0][0] - launches[0][1][0][0]
    steps = max(1, sum(1 for k in ops_kind.values() if k == "embed"))
    print("%d launches, %d block events, %d launches with a block count unlike their grid; %d steps traced" %
          (len(launches), len(ev), short, steps))
    print("%-34s %7s %12s %12s %12s" % ("launch kind", "count", "us a step", "us each", "spread us"))
    for k in sorted(cost, key=lambda k: -sum(cost[k])):
        c = cost[k]
        print("%-34s %7d %12.1f %12.2f %12.2f" % (k, len(c), sum(c) / steps / 1e3, sum(c) / len(c) / 1e3,
                                                   sum(spread[k]) / len(spread[k]) / 1e3))
    print("first release to last release: %.1f us, %.3f ms a step" % (total / 1e3, total / steps / 1e6))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "trace.txt")
