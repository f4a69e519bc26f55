/* qj_pdl.cuh — programmatic dependent launch (sm_90+): the runtime may launch
 * a kernel while the previous one in its stream is still running
 * (qj_cuda_set_pdl). Every kernel calls qj_pdl_launch_dependents() (the next
 * kernel may start its blocks once all of this one's have started) and
 * qj_pdl_wait() (the previous kernel has finished and its writes are
 * visible) before it touches anything but constant weights; most do both at
 * entry (qj_pdl_enter). Both are no-ops before sm_90 and in launches that did
 * not ask for the overlap. */
#ifndef QJ_PDL_CUH
#define QJ_PDL_CUH

__device__ __forceinline__ void qj_pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
#ifdef QJ_TRACE
/* A diagnostic (kernels compiled with QJ_TRACE=1 in the environment, compiler/nvrtc.c): thread 0 of every block
 * records the global timer before and after its wait into qj_trace_buf, which the host points, in every
 * module, at one buffer (compiler/gpu_model.c, qj_gpu_trace_*): word 0 counts the events, event i is the four
 * words 4 + 4 i.. = time before the wait (ns), after it, qj_trace_tag << 32 | blocks in the grid, the
 * kernel's kind << 48 | the block's threads << 32 | the multiprocessor it runs on. Kinds name the ops module's
 * kernels (QJ_TRACE_EMBED.. below; 0 for the matmuls, which their module names). */
__device__ unsigned long long *qj_trace_buf;
__device__ unsigned long long qj_trace_cap;
__device__ unsigned qj_trace_tag;
__device__ __forceinline__ unsigned long long qj_gtimer() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}
#endif
enum { QJ_TRACE_EMBED = 1, QJ_TRACE_RMSNORM = 2, QJ_TRACE_ATTENTION = 3, QJ_TRACE_SWIGLU = 4 };
__device__ __forceinline__ void qj_pdl_wait(unsigned kind = 0) {
    (void)kind;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#ifdef QJ_TRACE
    const unsigned long long t0 = qj_gtimer();
#endif
    asm volatile("griddepcontrol.wait;" ::: "memory");
#ifdef QJ_TRACE
    if (threadIdx.x == 0 && threadIdx.y == 0 && qj_trace_buf) {
        const unsigned long long t1 = qj_gtimer(), i = atomicAdd(qj_trace_buf, 1ull);
        unsigned sm;
        asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
        if (i < qj_trace_cap) {
            unsigned long long *e = qj_trace_buf + 4 + 4 * i;
            e[0] = t0;
            e[1] = t1;
            e[2] = (unsigned long long)qj_trace_tag << 32 | gridDim.x * gridDim.y * gridDim.z;
            e[3] = (unsigned long long)kind << 48 | (unsigned long long)(blockDim.x * blockDim.y * blockDim.z) << 32 | sm;
        }
    }
#endif
#endif
}
__device__ __forceinline__ void qj_pdl_enter(unsigned kind = 0) {
    qj_pdl_launch_dependents();
    qj_pdl_wait(kind);
}

/* The hand-off between the blocks of one launch through a count in global memory (the K split's partials, the
 * tails' rows, attention's shares): every thread stores, the block meets at a barrier, then thread 0 alone
 * calls qj_fence_acq_rel() before its atomic on the count (release: a fence is cumulative, so the barrier puts
 * every thread's stores before it) and again after it (acquire: the stores of the blocks that counted before),
 * and a second barrier hands those to the block's threads, which read them with ld.cg (qj_count_last below is
 * the fence, count, fence of the hand-offs that count blocks; the SwiGLU tail counts rows). One fence pair a block,
 * in place of a fence.sc.gpu (__threadfence) in every thread (H200, 2026-12-06: batch-16 K splits 1-2% faster,
 * decode unchanged; the hand-off's cost is its round trips, not the fences' strength: docs/PERFORMANCE.md). */
__device__ __forceinline__ void qj_fence_acq_rel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 700
    asm volatile("fence.acq_rel.gpu;" ::: "memory");
#else
    __threadfence();
#endif
}

/* Thread 0 of a block, between the hand-off's barriers: counts the block at cnt and says whether it was the last of
 * n blocks; the last sets the count back to zero for the next launch (no other block of this launch adds to it). */
__device__ __forceinline__ bool qj_count_last(unsigned *cnt, unsigned n) {
    qj_fence_acq_rel(); /* release: this block's stores, ordered by the barrier */
    const bool last = atomicAdd(cnt, 1u) == n - 1u;
    qj_fence_acq_rel(); /* acquire: the stores of the blocks that counted before */
    if (last) *cnt = 0;
    return last;
}

#endif
