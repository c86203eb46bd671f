// libtorch's intra-op thread pool for the passes ae-tch writes in Rust (the AdamW update,
// batch assembly): at::parallel_for splits [0, n) into at most get_num_threads()
// contiguous ranges and runs `body` on each, on the same threads that run libtorch's own
// kernels. Those threads were started after main() set flush-to-zero, so they inherit it,
// and `--threads` governs them. A range of `grain` or fewer items, or one thread, runs
// inline. `body` must not throw or unwind (the Rust side aborts on a panic).
#include <ATen/Parallel.h>

#include <cstdint>

extern "C" {

void aet_parallel_for(int64_t n, int64_t grain, void (*body)(void*, int64_t, int64_t),
                      void* ctx) {
  at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) { body(ctx, begin, end); });
}

}  // extern "C"
