// TorchScript modules assembled from traced functions, for `ae-tch export -o model.pt`:
// one module carrying several traced methods (forward, encode, decode) and string
// attributes, saved with torch::jit's own serializer so that torch.jit.load (Python) and
// torch::jit::load (C++) read it with no model code. tch can trace one function into a
// fresh module; this adds methods to a module it already has. A narrow C API: every call
// returns 0 on success, or 1 with the message in aet_last_error().
#include "guarded.h"
#include <torch/script.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/passes/fixup_trace_scope_blocks.h>
#include <torch/csrc/jit/passes/normalize_ops.h>

#include <sstream>
#include <stdexcept>
#include <string>

namespace {
thread_local std::string last_error;

torch::jit::Module* as_module(void* m) { return static_cast<torch::jit::Module*>(m); }

template <typename F>
int guarded(F&& body) {
  return aet::guarded(last_error, std::forward<F>(body));
}
}  // namespace

extern "C" {

const char* aet_last_error() { return last_error.c_str(); }

int aet_module_new(const char* name, void** out) {
  return guarded([&] { *out = new torch::jit::Module(name); });
}

void aet_module_free(void* m) { delete as_module(m); }

// Starts tracing a method of `m` that takes the tensors `inputs`.
int aet_trace_begin(void* m, torch::Tensor** inputs, int n) {
  return guarded([&] {
    if (torch::jit::tracer::isTracing()) throw std::runtime_error("already tracing");
    auto state = std::make_shared<torch::jit::tracer::TracingState>();
    torch::jit::tracer::setTracingState(state);
    state->graph->insertInput(0, "self")->setType(as_module(m)->_ivalue()->type());
    for (int i = 0; i < n; ++i) {
      auto value = state->graph->addInput();
      value->setType(c10::TensorType::get());
      state->setValue(*inputs[i], value);
    }
  });
}

// Ends the trace: the operations since aet_trace_begin, returning `outputs`, become the
// method `name` of `m`.
int aet_trace_end(void* m, const char* name, torch::Tensor** outputs, int n) {
  return guarded([&] {
    auto state = torch::jit::tracer::getTracingState();
    if (!state) throw std::runtime_error("not tracing");
    for (int i = 0; i < n; ++i) {
      state->graph->registerOutput(state->getOutput(*outputs[i], i));
    }
    auto* module = as_module(m);
    torch::jit::FixupTraceScopeBlocks(state->graph, module);
    torch::jit::NormalizeOps(state->graph);
    torch::jit::tracer::setTracingState(nullptr);
    auto fn = module->_ivalue()->compilation_unit()->create_function(name, state->graph);
    module->type()->addMethod(fn);
  });
}

// Drops a trace that failed half way.
void aet_trace_abandon() { torch::jit::tracer::abandon(); }

int aet_module_set_string(void* m, const char* name, const char* value) {
  return guarded([&] {
    as_module(m)->register_attribute(name, c10::StringType::get(), std::string(value));
  });
}

// Serialises `m` in memory and hands the bytes to `sink(ctx, bytes, len)` (the caller
// writes the file atomically).
int aet_module_save(void* m, void (*sink)(void*, const char*, size_t), void* ctx) {
  return guarded([&] {
    std::ostringstream out;
    as_module(m)->save(out);
    const std::string bytes = out.str();
    sink(ctx, bytes.data(), bytes.size());
  });
}

}  // extern "C"
