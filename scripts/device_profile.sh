#!/usr/bin/env bash
# device_profile.sh — on the GPU machine: build, then Nsight Compute profiles
# of the layer kernels of one plan and the SASS of their cubins. Usage:
#   OUT=dir scripts/device_profile.sh "PLAN:KERNEL_REGEX[:ENV=VAL]" ...
# e.g. "int4-g128:n28672" profiles the int4 gate+up kernel. Logs go to $OUT.
# $PROFILE_ARGS: more bench arguments (e.g. --batch 16).
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1 || true)
i=0
for arg in "$@"; do
  IFS=: read -r plan rx envs <<<"$arg"
  i=$((i + 1))
  export QJ_CACHE_DIR=/tmp/qjprof$i; rm -rf "$QJ_CACHE_DIR"
  log="$out/prof$i.txt"
  echo "== $arg" | tee "$log"
  env ${envs:-QJ_X=0} "$NCU" --clock-control none -k "regex:$rx" -c 3 \
    --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
    --section LaunchStats --section WarpStateStats --section SchedulerStats \
    --section ComputeWorkloadAnalysis --section InstructionStats \
    ./build-gpu/qjit bench --kernels --synthetic llama3-8b --plan "$plan" --iters 5 ${PROFILE_ARGS:-} >>"$log" 2>&1
  grep -E "Duration|Memory Throughput|DRAM Throughput|Registers Per|Achieved Occupancy|Theoretical Occupancy|Issued Ipc|No Eligible|Warp Cycles Per Issued|Block Limit" "$log" | head -40
  for f in "$QJ_CACHE_DIR"/*.cubin; do cuobjdump --dump-sass "$f"; done 2>&1 |
    awk -v rx="$rx" '/Function :/ {keep = ($0 ~ rx)} keep' > "$out/sass$i.txt"
done
