#!/usr/bin/env python3
"""diag_templates.py — diagnostic copies of templates/ for timing what part of
the block-shared integer-MMA kernel (templates/qj_imv.cu, QJ_IM_BX) costs what.
Each copy is a folder of every template with qj_imv.cu changed by a few
#defines; a binary reads it through QJ_TEMPLATE_DIR (the kernel cache is keyed
by the template text, so copies never share cubins with the product). The
diagnostics' outputs are wrong on purpose: timing only, never tests.

  td_base    the product's code (the switches at DEFAULTS below)
  td_nocomp  the k-loop's mma and folds left out (copies, barriers, epilogue kept)
  td_noepi   K split: the partial sums stored, but no fence, count or last block's sum
  td_nocopy  the k-loop's cp.async copies left out (the prologue's kept)
  td_none    all three left out: launch, prologue and the partial sums' stores
  td_lb3     __launch_bounds__(threads, 3): ptxas held to three blocks a multiprocessor
  td_sc      the K split's hand-off as it was before 2026-12-06 (sixth session; outputs right): every
             thread's __threadfence (fence.sc.gpu) before the block's barrier and the last block's after
             it, instead of thread 0's fence.acq_rel.gpu pair around the count's atomic (qj_count_last)

Usage: scripts/diag_templates.py [OUT_DIR]   (default .device; run from the repository root)
Then e.g. QJ_TEMPLATE_DIR=$PWD/.device/td_noepi QJ_IM_BX=1 qjit bench --kernels ... --batch 16
(docs/PERFORMANCE.md, "the K split's epilogue")."""
import os
import shutil
import sys

SWITCHES = [  # (the product's text, the switchable form); each must occur exactly once
    ('        if (NMT > 0) qj_dm_tile<NMT>(', '        if (QJ_DIAG_COMP && NMT > 0) qj_dm_tile<NMT>('),
    ('        if (i + QJ_IM_S - 1 < NT) {\n            uint32_t *sl',
     '        if (QJ_DIAG_COPY && i + QJ_IM_S - 1 < NT) {\n            uint32_t *sl'),
    ('        QJ_STORE(true, ws, ROWS);\n        __syncthreads();',
     '        QJ_STORE(true, ws, ROWS);\n        if (QJ_DIAG_SC) __threadfence();\n        __syncthreads();'),
    ('            qj_last = qj_count_last(QJ_CAT(QJ_KERNEL, _kscnt) + bm, QJ_IM_KS); /* the hand-off (qj_pdl.cuh) */\n',
     '            unsigned *const cnt = QJ_CAT(QJ_KERNEL, _kscnt) + bm;\n'
     '            qj_last = !QJ_DIAG_EPI ? 0 : QJ_DIAG_SC ? atomicAdd(cnt, 1u) == QJ_IM_KS - 1 : qj_count_last(cnt, QJ_IM_KS);\n'
     '            if (QJ_DIAG_SC && qj_last) *cnt = 0;\n'),
    ('             * time would make it a chain of round trips to L2, 16 x KS of them a thread) */\n',
     '             * time would make it a chain of round trips to L2, 16 x KS of them a thread) */\n'
     '            if (QJ_DIAG_SC) __threadfence();\n'),
    ('__launch_bounds__(QJ_WARPS * 32) QJ_IM_CLDIMS', '__launch_bounds__(QJ_WARPS * 32 QJ_DIAG_LB) QJ_IM_CLDIMS'),
]
DEFAULTS = dict(COMP=1, COPY=1, EPI=1, SC=0, MINB=0)  # the product's code
VARIANTS = {  # what each copy switches away from DEFAULTS
    'td_base': {},
    'td_sc': dict(SC=1),
    'td_nocomp': dict(COMP=0),
    'td_noepi': dict(EPI=0),
    'td_nocopy': dict(COPY=0),
    'td_none': dict(COMP=0, COPY=0, EPI=0),
    'td_lb3': dict(MINB=3),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else '.device'
    if not os.path.isfile('templates/qj_imv.cu'):
        sys.exit('diag_templates.py: no templates/qj_imv.cu under %s; run it from the repository root' % os.getcwd())
    with open('templates/qj_imv.cu') as f:
        src = f.read()
    for old, new in SWITCHES:
        if src.count(old) != 1:
            sys.exit('diag_templates.py: templates/qj_imv.cu no longer has exactly one %r; update SWITCHES' % old.strip())
        src = src.replace(old, new)
    for name, switched in VARIANTS.items():
        v = dict(DEFAULTS, **switched)
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir('templates'):
            shutil.copy(os.path.join('templates', f), d)
        hdr = ''.join('#define QJ_DIAG_%s %d /* diagnostic copy (scripts/diag_templates.py), not the product */\n' % kv
                      for kv in v.items() if kv[0] != 'MINB')
        hdr += '#define QJ_DIAG_LB %s\n' % (', %d' % v['MINB'] if v['MINB'] else '')
        with open(os.path.join(d, 'qj_imv.cu'), 'w') as f:
            f.write(hdr + src)
    print('diag_templates.py: %s in %s' % (', '.join(VARIANTS), out))


if __name__ == '__main__':
    main()
