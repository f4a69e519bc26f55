#!/usr/bin/env python3
"""cpu_loop_ops.py — the vector operations of a CPU kernel's innermost loop, from the assembly QJ_LLVM_DUMP=1 prints
(docs/PERFORMANCE.md, "what the 2- and 3-bit kernels cost in vector operations"). The loop taken is the one with the most
vpdpbusd between a label and a backward jump to it; its bytes of codes are counted from the dot products (each
vpdpbusd reads one 64-byte plane vector of one row, DIGITS of them per plane).

usage:
  QJ_LLVM_DUMP=1 build/qj_cpu_resident BITS GROUP 256 4096 3 2> asm.txt >/dev/null
  scripts/cpu_loop_ops.py asm.txt BITS DIGITS

Prints the loop's operation counts and vector ops per byte of codes, not counting loads, stores, prefetches and
zeroing idioms (vpxor/vpxord/vxorps of a register with itself, which the renamer removes)."""
import collections
import re
import sys

LOADS = ('vmovdqu64', 'vmovdqu32', 'vmovdqu8', 'vmovdqa64', 'vmovups', 'vmovaps', 'vmovsd', 'vmovss',
         'vbroadcastss', 'vpbroadcastd', 'vpbroadcastq')


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    path, bits, digits = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if not 2 <= bits <= 8 or not 1 <= digits <= 3:
        sys.exit('cpu_loop_ops.py: BITS is 2..8 and DIGITS 1..3 (got %d, %d)' % (bits, digits))
    lines = open(path).read().split('\n')
    labels = {l.rstrip(':'): i for i, l in enumerate(lines) if re.match(r'^\.LBB\d+_\d+:', l)}
    best = None
    for i, l in enumerate(lines):
        m = re.match(r'\s+j\w+\s+(\.LBB\d+_\d+)', l)
        if m and m.group(1) in labels and labels[m.group(1)] < i:
            body = [x.split(None, 1) for x in lines[labels[m.group(1)] + 1:i + 1]
                    if x.strip() and not x.strip().startswith(('#', '.'))]
            n = sum(1 for x in body if x[0] == 'vpdpbusd')
            if best is None or n > best[0]:
                best = (n, body)
    if not best or not best[0]:
        sys.exit('cpu_loop_ops.py: %s has no loop with vpdpbusd (an integer kernel dumped with QJ_LLVM_DUMP=1?)' % path)
    n, body = best
    ops = collections.Counter()
    for x in body:
        op, args = x[0], (x[1] if len(x) > 1 else '')
        regs = re.findall(r'%[xyz]mm\d+', args)
        if not op.startswith('v') or op in LOADS:
            continue
        if op in ('vpxor', 'vpxord', 'vxorps') and len(regs) == 3 and len(set(regs)) == 1:
            continue  # a zeroing idiom
        ops[op] += 1
    # bytes of codes: each plane vector is 64 bytes of one row's codes read as 8 / bits planes
    # (natural-order widths: 64 bytes of spread codes, 8 * bits bytes of packed ones)
    planes = 8 // bits if bits in (2, 4, 8) else 1
    code_bytes = n / digits / planes * 64 if bits in (2, 4, 8) else n / digits * 8 * bits
    total = sum(ops.values())
    print('bits %d, %d digits: loop of %d instructions, %d vpdpbusd, %g bytes of codes' % (bits, digits, len(body), n, code_bytes))
    print('vector ops (no loads, no zeroing): %d = %.3f a byte of codes' % (total, total / code_bytes))
    print('  ' + ', '.join('%s %d' % kv for kv in ops.most_common()))


if __name__ == '__main__':
    main()
