// GroupNorm for channels-last (NHWC) CPU tensors, as an autograd function. libtorch's own
// GroupNorm reads such tensors about 20 times slower than NCHW ones, while its bf16
// convolutions run fastest on them; the arithmetic here is ae-tch's (src/model/norm.rs,
// handed over once through aet_group_norm_kernels), this file only ties it into autograd.
// While tracing (TorchScript export) it records libtorch's group_norm instead, which
// computes the same function.
#include "guarded.h"

#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace {
thread_local std::string last_error;

// One batch: `x`, `y` are [n, hw, c] (channels last), `w`, `b` [c], in the kind `kind`
// names (0 f32, 1 bf16); `mean`, `rstd` [n, groups] in f32.
using Forward = void (*)(int kind, const void* x, const void* w, const void* b, void* y,
                         float* mean, float* rstd, int64_t n, int64_t hw, int64_t c,
                         int64_t groups, double eps);
// `dy`, `x`, `dx` [n, hw, c]; `dw`, `db` [c] in f32, summed over the batch.
using Backward = void (*)(int kind, const void* dy, const void* x, const void* w,
                          const float* mean, const float* rstd, void* dx, float* dw,
                          float* db, int64_t n, int64_t hw, int64_t c, int64_t groups);

Forward forward_kernel = nullptr;
Backward backward_kernel = nullptr;

int kind_code(const at::Tensor& t) { return t.scalar_type() == at::kBFloat16 ? 1 : 0; }

// What the kernels read: a dense channels-last CPU batch of f32 or bf16, and C values of
// weight and bias of its kind, in groups that divide C. Anything else goes to libtorch.
bool kernels_apply(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                   int64_t groups) {
  auto kind = x.scalar_type();
  auto fits = [&](const at::Tensor& p) {
    return p.device().is_cpu() && p.scalar_type() == kind && p.dim() == 1 &&
           p.is_contiguous() && p.size(0) == x.size(1);
  };
  return forward_kernel != nullptr && x.device().is_cpu() && x.dim() == 4 &&
         (kind == at::kFloat || kind == at::kBFloat16) && x.numel() > 0 &&
         x.is_contiguous(at::MemoryFormat::ChannelsLast) && fits(w) && fits(b) &&
         groups > 0 && x.size(1) % groups == 0;
}

struct GroupNormNhwc : public torch::autograd::Function<GroupNormNhwc> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& w, const at::Tensor& b, int64_t groups,
                            double eps) {
    const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
    auto y = at::empty_like(x, at::MemoryFormat::ChannelsLast);
    auto stats = x.options().dtype(at::kFloat);
    auto mean = at::empty({n, groups}, stats), rstd = at::empty({n, groups}, stats);
    forward_kernel(kind_code(x), x.data_ptr(), w.data_ptr(), b.data_ptr(), y.data_ptr(),
                   mean.data_ptr<float>(), rstd.data_ptr<float>(), n, hw, c, groups, eps);
    ctx->save_for_backward({x, w, mean, rstd});
    ctx->saved_data["groups"] = groups;
    return y;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    // The kernels record no graph of their own: no second derivative.
    TORCH_CHECK(!torch::autograd::GradMode::is_enabled(),
                "the channels-last GroupNorm has no second derivative");
    auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w = saved[1], &mean = saved[2], &rstd = saved[3];
    const int64_t groups = ctx->saved_data["groups"].toInt();
    const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
    auto dy = grads[0].to(x.scalar_type()).contiguous(at::MemoryFormat::ChannelsLast);
    auto dx = at::empty_like(x, at::MemoryFormat::ChannelsLast);
    auto f32 = x.options().dtype(at::kFloat);
    auto dw = at::empty({c}, f32), db = at::empty({c}, f32);
    backward_kernel(kind_code(x), dy.data_ptr(), x.data_ptr(), w.data_ptr(),
                    mean.data_ptr<float>(), rstd.data_ptr<float>(), dx.data_ptr(),
                    dw.data_ptr<float>(), db.data_ptr<float>(), n, hw, c, groups);
    return {dx, dw.to(w.scalar_type()), db.to(w.scalar_type()), at::Tensor(), at::Tensor()};
  }
};
}  // namespace

extern "C" {

const char* aet_norm_last_error() { return last_error.c_str(); }

void aet_group_norm_kernels(Forward forward, Backward backward) {
  forward_kernel = forward;
  backward_kernel = backward;
}

// GroupNorm of `x` [N, C, H, W] with weight `w` and bias `b` [C]: through the kernels
// where they apply (`kernels_apply`), else libtorch's.
int aet_group_norm_nhwc(const at::Tensor* x, const at::Tensor* w, const at::Tensor* b,
                        int64_t groups, double eps, at::Tensor** out) {
  return aet::guarded(last_error, [&] {
    at::Tensor y;
    if (torch::jit::tracer::isTracing() || !kernels_apply(*x, *w, *b, groups)) {
      y = at::group_norm(*x, groups, *w, *b, eps);
    } else {
      y = GroupNormNhwc::apply(*x, *w, *b, groups, eps);
    }
    *out = new at::Tensor(std::move(y));
  });
}

}  // extern "C"
