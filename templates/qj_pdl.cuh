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
__device__ __forceinline__ void qj_pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void qj_pdl_enter() {
    qj_pdl_launch_dependents();
    qj_pdl_wait();
}

#endif
