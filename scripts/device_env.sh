# device_env.sh — sourced by the scripts/device_*.sh that run on the GPU
# machine: the environment (the libraries and data carried in .device/, a
# kernel cache), the output folder ($out: $OUT, or the caller's choice in
# out= before sourcing), the build, and helpers:
#   find_cublas         export QJ_CUBLAS (cuBLAS found in the image) unless set
#   gpu_tests           run test_gpu_gemv and test_gpu_forward, logs in $out
#   kb PLAN [VAR=VAL]   per-kernel bench of a synthetic Llama-3-8B with PLAN
#   t MESSAGE           print MESSAGE after the seconds since the call began ($T0: the caller's start, else now)
#   left                true while those seconds are under $BUDGET (the caller's, else 540)
T0=${T0:-$(date +%s)}
t() { echo "[t=$(($(date +%s) - T0))s] $*"; }
left() { [ $(($(date +%s) - T0)) -lt "${BUDGET:-540}" ]; }
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export LD_LIBRARY_PATH=$PWD/.device/lib:${LD_LIBRARY_PATH:-} QJ_CACHE_DIR=${QJ_CACHE_DIR:-/tmp/qjcache}
export QJ_SHARED=$PWD/.device/shared QJ_TEST_TMP=/tmp/qjt
out=${out:-${OUT:-/tmp/out}}
mkdir -p /tmp/qjt "$out"
bash scripts/device_build.sh || exit 1

# find_cublas: export QJ_CUBLAS (the kernel bench's dense baseline) unless the caller set it, from the image's CUDA
find_cublas() {
    if [ -z "${QJ_CUBLAS:-}" ]; then
        QJ_CUBLAS=$(find /usr/local /usr/lib /opt -name 'libcublas.so.1[0-9]' 2>/dev/null | head -1)
        [ -n "$QJ_CUBLAS" ] && export QJ_CUBLAS
    fi
    return 0
}

gpu_tests() {
    ./build-gpu/tests/test_gpu_gemv > "$out/gemv.log" 2>&1
    echo "test_gpu_gemv rc=$? $(grep -E 'checked' "$out/gemv.log")"
    grep -E "FAIL|rel " "$out/gemv.log" | head -5
    ./build-gpu/tests/test_gpu_forward > "$out/forward.log" 2>&1
    echo "test_gpu_forward rc=$? $(tail -1 "$out/forward.log")"
}

kb() {
    echo "== $*"
    env "${@:2}" ./build-gpu/qjit bench --kernels --synthetic llama3-8b --plan "$1" --iters 50 2>&1 |
        grep -E "copy ceiling|^layers|^lm_head|rror" | tee -a "$out/kernels.log"
}
