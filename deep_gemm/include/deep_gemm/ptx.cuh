// Thin wrappers over the Hopper PTX the kernels use: mbarriers, TMA loads,
// warpgroup MMA fences, shared-memory matrix descriptors and register budgets.
#pragma once

#include <deep_gemm/types.cuh>

namespace deep_gemm::ptx {

__device__ __forceinline__ uint32_t smem_addr(const void* ptr) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(ptr));
}

// ---- mbarrier -------------------------------------------------------------

__device__ __forceinline__ void mbarrier_init(uint64_t* bar, uint32_t arrivals) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(bar)), "r"(arrivals));
}

// Makes barrier initialisation visible to the async proxy (TMA) before use.
__device__ __forceinline__ void fence_barrier_init() {
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

__device__ __forceinline__ void mbarrier_arrive(uint64_t* bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_addr(bar)) : "memory");
}

// `count` arrivals at once.
__device__ __forceinline__ void mbarrier_arrive(uint64_t* bar, uint32_t count) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(bar)), "r"(count) : "memory");
}

__device__ __forceinline__ void mbarrier_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(bar)), "r"(bytes)
                 : "memory");
}

// Waits until the barrier phase with the given parity has completed.
__device__ __forceinline__ void mbarrier_wait(uint64_t* bar, uint32_t parity) {
    asm volatile(
        "{\n"
        ".reg .pred done;\n"
        "wait_loop:\n"
        "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
        "@!done bra wait_loop;\n"
        "}\n" ::"r"(smem_addr(bar)),
        "r"(parity)
        : "memory");
}

// Brings the line holding `ptr` into this SM's L1.
__device__ __forceinline__ void prefetch_l1(const void* ptr) {
    asm volatile("prefetch.global.L1 [%0];" ::"l"(ptr));
}

// ---- TMA ------------------------------------------------------------------

__device__ __forceinline__ void tma_prefetch_descriptor(const TensorMap* map) {
    asm volatile("prefetch.tensormap [%0];" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}

// 2D tile load global -> shared; completion is signalled on `bar` as transaction bytes.
__device__ __forceinline__ void tma_load_2d(void* dst, const TensorMap* map, uint64_t* bar, int inner, int outer) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];" ::
            "r"(smem_addr(dst)),
        "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_addr(bar)), "r"(inner), "r"(outer)
        : "memory");
}

// tma_load_2d's 3D form, coordinates innermost first.
__device__ __forceinline__ void tma_load_3d(void* dst, const TensorMap* map, uint64_t* bar, int x, int y, int z) {
    asm volatile(
        "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5}], [%2];" ::
            "r"(smem_addr(dst)),
        "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_addr(bar)), "r"(x), "r"(y), "r"(z)
        : "memory");
}

// An L2 cache policy for loads (the operand of .L2::cache_hint): the lines they
// bring in are the first their L2 set gives up.
__device__ __forceinline__ uint64_t l2_evict_first_policy() {
    uint64_t policy;
    asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
    return policy;
}

// tma_load_2d, the lines it brings into L2 under `policy`.
__device__ __forceinline__ void tma_load_2d(void* dst, const TensorMap* map, uint64_t* bar, int inner, int outer,
                                            uint64_t policy) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint"
        " [%0], [%1, {%3, %4}], [%2], %5;" ::"r"(smem_addr(dst)),
        "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_addr(bar)), "r"(inner), "r"(outer), "l"(policy)
        : "memory");
}

// 2D tile store shared -> global; parts of the box outside the tensor are not written.
__device__ __forceinline__ void tma_store_2d(const TensorMap* map, const void* src, int inner, int outer) {
    asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%2, %3}], [%1];" ::"l"(
                     reinterpret_cast<uint64_t>(map)),
                 "r"(smem_addr(src)), "r"(inner), "r"(outer)
                 : "memory");
}
// tma_store_2d, or with `add` the box added to what global memory holds (the reduction
// runs in L2, in the tensor map's element type: fp32 or bf16).
__device__ __forceinline__ void tma_store_2d(const TensorMap* map, const void* src, int inner, int outer, bool add) {
    if (add)
        asm volatile("cp.reduce.async.bulk.tensor.2d.global.shared::cta.add.bulk_group [%0, {%2, %3}], [%1];" ::"l"(
                         reinterpret_cast<uint64_t>(map)),
                     "r"(smem_addr(src)), "r"(inner), "r"(outer)
                     : "memory");
    else
        tma_store_2d(map, src, inner, outer);
}
// tma_store_2d's 3D form, coordinates innermost first.
__device__ __forceinline__ void tma_store_3d(const TensorMap* map, const void* src, int x, int y, int z) {
    asm volatile("cp.async.bulk.tensor.3d.global.shared::cta.bulk_group [%0, {%2, %3, %4}], [%1];" ::"l"(
                     reinterpret_cast<uint64_t>(map)),
                 "r"(smem_addr(src)), "r"(x), "r"(y), "r"(z)
                 : "memory");
}
__device__ __forceinline__ void tma_store_commit() { asm volatile("cp.async.bulk.commit_group;" ::: "memory"); }
// Waits until at most `Pending` of this thread's most recent committed store groups
// are still reading shared memory.
template <int Pending>
__device__ __forceinline__ void tma_store_wait_read() {
    asm volatile("cp.async.bulk.wait_group.read %0;" ::"n"(Pending) : "memory");
}
// Waits until this thread's committed stores are complete.
__device__ __forceinline__ void tma_store_wait() { asm volatile("cp.async.bulk.wait_group 0;" ::: "memory"); }

// Makes this thread's ordinary shared-memory writes visible to TMA (the async proxy).
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }

// Barrier over `threads` threads (a multiple of 32) under id `id` (1..15; 0 is __syncthreads).
__device__ __forceinline__ void named_barrier(uint32_t id, uint32_t threads) {
    asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(threads) : "memory");
}

// ---- warpgroup MMA ----------------------------------------------------------

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int Pending>
__device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(Pending) : "memory");
}

// Keeps the compiler from moving reads/writes of accumulator registers across
// the asynchronous MMA boundary (the asm statements alone do not order them).
__device__ __forceinline__ void fence_operand(float& reg) { asm volatile("" : "+f"(reg)::"memory"); }

// Shared-memory matrix descriptor for a K-major tile written by TMA with the
// 128-byte swizzle: rows of 128 bytes, 8-row core groups 1024 bytes apart. Kept as
// its two 32-bit halves: stepping through shared memory adds to the start address
// in the low half only (addresses stay below 256 KB, so that field never carries
// into the next), a 32-bit add where a 64-bit one would take two instructions.
struct SmemDescriptor {
    uint32_t lo, hi;

    __device__ __forceinline__ static SmemDescriptor sw128(const void* tile) {
        return {(smem_addr(tile) & 0x3FFFF) >> 4,     // start address, 16-byte units
                (1024 >> 4) | (1u << 30)};             // stride byte offset; swizzle mode 128B (bit 62)
    }
    // MN-major, 128-byte swizzle (the operand's transpose bit set): 64-element MN atoms
    // of 128-byte rows, one row per K; the leading byte offset is the step between MN
    // atoms, the stride byte offset the step between 8-row K groups (1024 bytes).
    __device__ __forceinline__ static SmemDescriptor sw128_mn(const void* tile, uint32_t atom_bytes) {
        return {((smem_addr(tile) & 0x3FFFF) >> 4) | ((atom_bytes >> 4) << 16), (1024 >> 4) | (1u << 30)};
    }
    // The descriptor of the tile `units` x 16 bytes further on.
    __device__ __forceinline__ uint64_t at(uint32_t units) const {
        uint64_t desc;
        asm("mov.b64 %0, {%1, %2};" : "=l"(desc) : "r"(lo + units), "r"(hi));
        return desc;
    }
};

// ---- registers --------------------------------------------------------------

template <uint32_t Count>
__device__ __forceinline__ void regs_dealloc() {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(Count));
}
template <uint32_t Count>
__device__ __forceinline__ void regs_alloc() {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(Count));
}

// Registers per thread the math warpgroups of a CTA of `threads` can claim with
// setmaxnreg once its one producer warpgroup keeps `producer_registers`. setmaxnreg
// moves registers only within what the launch gave the CTA: `threads` times ptxas's
// cap for one such CTA per SM (a multiple of 8, at most 248); asking for more waits
// forever.
__host__ __device__ constexpr int claimable_math_registers(int threads, int producer_registers) {
    const int per_thread = 65536 / threads / 8 * 8;
    const int launch = per_thread < 248 ? per_thread : 248;
    return (threads * launch - 128 * producer_registers) / (threads - 128) / 8 * 8;
}

}  // namespace deep_gemm::ptx
