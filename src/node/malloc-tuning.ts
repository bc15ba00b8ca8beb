/**
 * glibc malloc settings for member processes. On this kind of machine (a VM where a page fault costs
 * ~20 µs) a fresh large buffer is expensive: writing 8 MiB into newly allocated memory takes ~35 ms, into
 * reused memory 0.5 ms. By default glibc serves allocations over 128 KiB with their own mmap and unmaps them
 * when freed, so every large frame, chunk or value the node allocates faults in its pages again. These
 * tunables keep allocations up to 32 MiB in the heap, keep up to 256 MiB of freed heap instead of returning
 * it to the kernel at once, and let malloc ask for transparent huge pages (2 MiB per fault where the kernel
 * allows THP on madvise). The price is a resident size that follows the recent peak rather than the current
 * need. They only take effect when a process starts (glibc reads them before main), so the launchers set them
 * for the members they start; `squall start` run by hand takes them from the environment
 * (README: "Memory").
 */
export const MALLOC_TUNABLES = 'glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456';

/**
 * The environment of a member process: `env` with MALLOC_TUNABLES as GLIBC_TUNABLES, unless it already sets
 * GLIBC_TUNABLES (the operator's choice wins) or SQUALL_MALLOC_TUNING=0 turns this off.
 */
export function withMallocTuning(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (env.GLIBC_TUNABLES !== undefined || env.SQUALL_MALLOC_TUNING === '0') return env;
  return { ...env, GLIBC_TUNABLES: MALLOC_TUNABLES };
}
