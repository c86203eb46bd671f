// GroupNorm for channels-last (NHWC) CPU tensors, as an autograd function, optionally
// followed by a residual sum and a ReLU in the same passes: relu(skip + norm(x)). libtorch's
// own GroupNorm reads such tensors about 20 times slower than NCHW ones, while its bf16
// convolutions run fastest on them; the arithmetic here is ae-tch's (src/model/norm.rs,
// handed over once through aet_group_norm_kernels), this file only ties it into autograd.
// While tracing (TorchScript export) it records libtorch's group_norm (and add, relu)
// instead, which compute the same function.
#include "guarded.h"

#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace {
thread_local std::string last_error;

// One batch: `x`, `y` are [n, hw, c] (channels last), `w`, `b` [c], in the kind `kind`
// names (0 f32, 1 bf16); `mean`, `rstd` [n, groups] in f32. With `relu`, y = relu(skip +
// norm(x)), `skip` [n, hw, c] or null; without, y = norm(x) (`skip` null).
using Forward = void (*)(int kind, const void* x, const void* w, const void* b,
                         const void* skip, int relu, void* y, float* mean, float* rstd,
                         int64_t n, int64_t hw, int64_t c, int64_t groups, double eps);
// `dy`, `x`, `dx` [n, hw, c]; `dw`, `db` [c] in f32, summed over the batch. With `y` (the
// forward's output after its ReLU) non-null, `dm` [n, hw, c] receives dy where y > 0, else 0,
// and the norm's gradients follow from that; with `y` null, `dm` is null too.
using Backward = void (*)(int kind, const void* dy, const void* y, const void* x,
                          const void* w, const float* mean, const float* rstd, void* dm,
                          void* dx, float* dw, float* db, int64_t n, int64_t hw, int64_t c,
                          int64_t groups);

Forward forward_kernel = nullptr;
Backward backward_kernel = nullptr;

int kind_code(const at::Tensor& t) { return t.scalar_type() == at::kBFloat16 ? 1 : 0; }

// What the kernels read: a dense channels-last CPU batch of f32 or bf16, C values of weight
// and bias of its kind, in groups that divide C, and a residual `skip` (if defined) of the
// batch's sizes, kind and layout, only before a ReLU. Anything else goes to libtorch.
bool kernels_apply(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                   const at::Tensor& skip, bool relu, int64_t groups) {
  auto kind = x.scalar_type();
  auto fits = [&](const at::Tensor& p) {
    return p.device().is_cpu() && p.scalar_type() == kind && p.dim() == 1 &&
           p.is_contiguous() && p.size(0) == x.size(1);
  };
  return forward_kernel != nullptr && x.device().is_cpu() && x.dim() == 4 &&
         (kind == at::kFloat || kind == at::kBFloat16) && x.numel() > 0 &&
         x.is_contiguous(at::MemoryFormat::ChannelsLast) && fits(w) && fits(b) &&
         groups > 0 && x.size(1) % groups == 0 &&
         (!skip.defined() ||
          (relu && skip.device().is_cpu() && skip.scalar_type() == kind &&
           skip.sizes() == x.sizes() && skip.is_contiguous(at::MemoryFormat::ChannelsLast)));
}

// libtorch's operations for the same function.
at::Tensor composed(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                    const at::Tensor& skip, bool relu, int64_t groups, double eps) {
  auto y = at::group_norm(x, groups, w, b, eps);
  if (skip.defined()) y = skip + y;
  return relu ? at::relu(y) : y;
}

struct GroupNormNhwc : public torch::autograd::Function<GroupNormNhwc> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& w, const at::Tensor& b,
                            const at::Tensor& skip, bool has_skip, bool relu, int64_t groups,
                            double eps) {
    const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
    auto y = at::empty_like(x, at::MemoryFormat::ChannelsLast);
    auto stats = x.options().dtype(at::kFloat);
    auto mean = at::empty({n, groups}, stats), rstd = at::empty({n, groups}, stats);
    forward_kernel(kind_code(x), x.data_ptr(), w.data_ptr(), b.data_ptr(),
                   has_skip ? skip.data_ptr() : nullptr, relu, y.data_ptr(),
                   mean.data_ptr<float>(), rstd.data_ptr<float>(), n, hw, c, groups, eps);
    // The ReLU's mask is read from the output (as torch's relu does), saved only with it.
    ctx->save_for_backward({x, w, mean, rstd, relu ? y : at::Tensor()});
    ctx->saved_data["groups"] = groups;
    ctx->saved_data["skip"] = has_skip;
    return y;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    // The kernels record no graph of their own: no second derivative.
    TORCH_CHECK(!torch::autograd::GradMode::is_enabled(),
                "the channels-last GroupNorm has no second derivative");
    auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w = saved[1], &mean = saved[2], &rstd = saved[3], &y = saved[4];
    const int64_t groups = ctx->saved_data["groups"].toInt();
    const bool relu = y.defined();
    const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
    auto dy = grads[0].to(x.scalar_type()).contiguous(at::MemoryFormat::ChannelsLast);
    auto dx = at::empty_like(x, at::MemoryFormat::ChannelsLast);
    // The gradient after the ReLU: the residual's, and what the norm's follow from.
    auto dm = relu ? at::empty_like(x, at::MemoryFormat::ChannelsLast) : dy;
    auto f32 = x.options().dtype(at::kFloat);
    auto dw = at::empty({c}, f32), db = at::empty({c}, f32);
    backward_kernel(kind_code(x), dy.data_ptr(), relu ? y.data_ptr() : nullptr, x.data_ptr(),
                    w.data_ptr(), mean.data_ptr<float>(), rstd.data_ptr<float>(),
                    relu ? dm.data_ptr() : nullptr, dx.data_ptr(), dw.data_ptr<float>(),
                    db.data_ptr<float>(), n, hw, c, groups);
    auto dskip = ctx->saved_data["skip"].toBool() ? dm : at::Tensor();
    return {dx,          dw.to(w.scalar_type()), db.to(w.scalar_type()), dskip,
            at::Tensor(), at::Tensor(),          at::Tensor(),           at::Tensor()};
  }
};
}  // namespace

extern "C" {

const char* aet_norm_last_error() { return last_error.c_str(); }

void aet_group_norm_kernels(Forward forward, Backward backward) {
  forward_kernel = forward;
  backward_kernel = backward;
}

// GroupNorm of `x` [N, C, H, W] with weight `w` and bias `b` [C], then with `relu` the
// sum with `skip` (null for none) [N, C, H, W] and a ReLU: through the kernels where they
// apply (`kernels_apply`), else libtorch's operations.
int aet_group_norm_nhwc(const at::Tensor* x, const at::Tensor* w, const at::Tensor* b,
                        const at::Tensor* skip, int relu, int64_t groups, double eps,
                        at::Tensor** out) {
  return aet::guarded(last_error, [&] {
    const at::Tensor none, &residual = skip ? *skip : none;
    at::Tensor y;
    if (torch::jit::tracer::isTracing() ||
        !kernels_apply(*x, *w, *b, residual, relu != 0, groups)) {
      y = composed(*x, *w, *b, residual, relu != 0, groups, eps);
    } else {
      // autograd takes no undefined tensor as an input: an empty one stands for no skip.
      const auto& input = skip ? *skip : at::empty({0}, x->options());
      y = GroupNormNhwc::apply(*x, *w, *b, input, skip != nullptr, relu != 0, groups, eps);
    }
    *out = new at::Tensor(std::move(y));
  });
}

// Whether this thread is tracing a TorchScript export (1) or not (0): the model keeps
// NCHW then, so that the export records no layout changes.
int aet_is_tracing() { return torch::jit::tracer::isTracing() ? 1 : 0; }

}  // extern "C"
