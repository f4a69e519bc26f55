#!/usr/bin/env bash
# ctest-labels: unit
# test_diag_templates.sh — scripts/diag_templates.py (docs/PERFORMANCE.md, "the K split's epilogue"): it still finds
# every place of templates/qj_imv.cu it switches, writes each copy with its switches in place of the product's text,
# and refuses, naming the text, a template that lacks one of them.
set -u
command -v python3 >/dev/null || { echo "SKIP: python3 (runs scripts/diag_templates.py)"; exit 77; }
source "$(dirname "$0")/cli_lib.sh" # ok, bad, expect_fail NEEDLE CMD...
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DT=$ROOT/scripts/diag_templates.py
T=${QJ_TEST_TMP:-/tmp}/test_diag_templates
rm -rf "$T"; mkdir -p "$T"
pass=0; fail=0
(cd "$ROOT" && python3 "$DT" "$T/out" >/dev/null) && ok || bad "diag_templates.py failed on the repository's templates"
for v in td_base td_sc td_nocomp td_noepi td_nocopy td_none td_lb3; do
  f=$T/out/$v/qj_imv.cu
  [ -f "$f" ] || { bad "$v: no qj_imv.cu"; continue; }
  # every template is copied beside it
  for t in "$ROOT"/templates/*; do [ -f "$T/out/$v/$(basename "$t")" ] || bad "$v: $(basename "$t") not copied"; done
  # the defines, then the switched forms (and none of the product's forms they replace)
  for d in COMP COPY EPI SC; do grep -q "^#define QJ_DIAG_$d [01] " "$f" || bad "$v: QJ_DIAG_$d not defined"; done
  grep -q "^#define QJ_DIAG_LB" "$f" || bad "$v: QJ_DIAG_LB not defined"
  for s in "QJ_DIAG_COMP && NMT > 0" "QJ_DIAG_COPY && i + QJ_IM_S" "if (QJ_DIAG_SC && qj_last) *cnt = 0;" \
           "qj_last = !QJ_DIAG_EPI ? 0 : QJ_DIAG_SC ? atomicAdd(cnt, 1u)" "if (QJ_DIAG_SC) __threadfence();" "QJ_WARPS * 32 QJ_DIAG_LB)"; do
    grep -qF "$s" "$f" && ok || bad "$v: '$s' missing"
  done
  grep -qF "qj_last = qj_count_last(" "$f" && bad "$v: the product's count is still there" || ok
done
grep -q "^#define QJ_DIAG_EPI 0 " "$T/out/td_noepi/qj_imv.cu" && ok || bad "td_noepi: EPI not 0"
grep -q "^#define QJ_DIAG_SC 1 " "$T/out/td_sc/qj_imv.cu" && ok || bad "td_sc: SC not 1"
# td_sc has the old hand-off's two fences a thread (before the barrier, in the last block) and, in place of thread 0's
# qj_count_last (fences around the count), a bare count
[ "$(grep -c "if (QJ_DIAG_SC) __threadfence();" "$T/out/td_sc/qj_imv.cu")" = 2 ] && ok || bad "td_sc: not two switched fences"
[ "$(grep -c "QJ_DIAG_SC ? atomicAdd(cnt, 1u) == QJ_IM_KS - 1 : qj_count_last(cnt, QJ_IM_KS)" "$T/out/td_sc/qj_imv.cu")" = 1 ] && ok || bad "td_sc: the count not switched"
grep -q "^#define QJ_DIAG_LB , 3" "$T/out/td_lb3/qj_imv.cu" && ok || bad "td_lb3: launch bounds not 3"
# a template without one of the places: refused, the place named, exit non-zero
mkdir -p "$T/fake/templates"
cp "$ROOT"/templates/* "$T/fake/templates/"
sed -i 's/if (NMT > 0) qj_dm_tile<NMT>(/if (NMT >= 1) qj_dm_tile<NMT>(/' "$T/fake/templates/qj_imv.cu"
expect_fail "no longer has exactly one 'if (NMT > 0) qj_dm_tile<NMT>('" bash -c "cd '$T/fake' && python3 '$DT' '$T/fake/out'"
[ ! -e "$T/fake/out" ] && ok || bad "a refused run wrote $T/fake/out"
# run from elsewhere: refused with the reason, nothing written
mkdir -p "$T/elsewhere"
expect_fail "run it from the repository root" bash -c "cd '$T/elsewhere' && python3 '$DT' '$T/elsewhere/out'"
[ ! -e "$T/elsewhere/out" ] && ok || bad "a refused run wrote $T/elsewhere/out"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
