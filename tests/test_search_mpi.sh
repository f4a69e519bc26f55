#!/usr/bin/env bash
# ctest-labels: unit
# test_search_mpi.sh — qjit search --mpi under mpirun (Open MPI) on stories260K, CPU:
# rank 0 drives, ranks 1 and 2 run the trials; the history equals that of the same
# search in two local worker processes (--workers 2), timings aside, since both run
# batches of two proposed the same way. Skips (77) without MPI in the build, mpirun,
# ../shared or python3.
set -u
source "$(dirname "$0")/cli_lib.sh"
search_test_setup search_mpi
command -v mpirun >/dev/null || { echo "SKIP: no mpirun (Open MPI)"; exit 77; }
if ! ldd "$Q" 2>/dev/null | grep -q libmpi; then
  echo "SKIP: this qjit was built without MPI"; exit 77
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# under AddressSanitizer: Open MPI's own allocations outlive MPI_Finalize (not qjit's leaks);
# they are suppressed by library, which needs whole stacks (the slow unwinder) through
# components that stay loaded (no dlclose), so qjit's own allocations are still checked
export LSAN_OPTIONS="suppressions=$(cd "$(dirname "$0")" && pwd)/lsan_mpi.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0" OMPI_MCA_mca_base_component_disable_dlclose=1
args=(--model "$M" --objective ppl --max-size 0.000264928 --text "$TXT" --max-tokens 300 --init 4 --seed 3 --trials 8)
out=$(timeout 300 mpirun -np 3 "$Q" search "${args[@]}" --mpi --history "$T/m.jsonl" --output "$T/m.csv" 2>&1) &&
  ok || bad "mpirun -np 3 qjit search --mpi: $out"
case "$out" in *"2 MPI worker ranks"*"------Best config------"*) ok ;; *) bad "no MPI worker line or best block: $out" ;; esac
"$Q" search "${args[@]}" --workers 2 --history "$T/w.jsonl" --output "$T/w.csv" >/dev/null 2>&1 && ok || bad "--workers 2"
[ "$(wc -l < "$T/m.jsonl")" -eq 9 ] && same_history "$T/m.jsonl" "$T/w.jsonl" && ok ||
  bad "MPI history differs from the --workers 2 one"
# one rank only: refused, nothing left behind
out=$(timeout 60 mpirun -np 1 "$Q" search "${args[@]}" --mpi --history "$T/one.jsonl" 2>&1); rc=$?
[ $rc -ne 0 ] && case "$out" in *"at least one worker"*) true ;; *) false ;; esac && ok || bad "mpirun -np 1 ($rc): $out"
[ ! -f "$T/one.jsonl" ] && ok || bad "a history was left by the refused run"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
