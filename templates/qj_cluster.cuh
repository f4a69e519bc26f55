/* qj_cluster.cuh — thread-block cluster helpers (sm_90+), shared by the ops template's attention and the
 * integer-MMA GEMV's K split: a cluster-wide barrier, and a float of another block's shared memory. */
#ifndef QJ_CLUSTER_CUH
#define QJ_CLUSTER_CUH
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
/* a cluster-wide barrier: every thread of every block of the cluster; what each wrote to its shared memory
 * before it is visible to the others after it */
__device__ __forceinline__ void qj_cluster_sync() {
    asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}
/* the float at shared-memory address a (this block's layout) of the cluster's block r */
__device__ __forceinline__ float qj_dsmem_f32(unsigned a, unsigned r) {
    unsigned ra;
    float v;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(ra) : "r"(a), "r"(r));
    asm volatile("ld.shared::cluster.f32 %0, [%1];" : "=f"(v) : "r"(ra) : "memory");
    return v;
}
#endif
#endif
