// Data-parallel training on PyTorch's own distributed engine (c10d): a TCPStore for the
// rendezvous (served by torchrun's agent, or by rank 0) and a process group whose
// allreduce sums the ranks' gradients: Gloo for CPU tensors, NCCL for CUDA tensors when
// built with USE_C10D_NCCL (the CUDA and NCCL headers of the nvidia-* wheels). A narrow C API for src/dist.rs: every call returns
// 0 on success, or 1 with the message in aet_dist_last_error().
#include "guarded.h"
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace {
thread_local std::string last_error;

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> pg;
  std::chrono::milliseconds timeout;
};

Group* as_group(void* g) { return static_cast<Group*>(g); }

template <typename F>
int guarded(F&& body) {
  return aet::guarded(last_error, std::forward<F>(body));
}

bool loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}
}  // namespace

extern "C" {

const char* aet_dist_last_error() { return last_error.c_str(); }

// Whether this build carries the NCCL backend (Gloo it always has).
int aet_dist_has_nccl() {
#ifdef USE_C10D_NCCL
  return 1;
#else
  return 0;
#endif
}

// Connects to the store at host:port (serving it when `serve`), under `prefix`.
int aet_dist_store(const char* host, int port, int serve, int world, int timeout_ms,
                   const char* prefix, void** out) {
  return guarded([&] {
    c10d::TCPStoreOptions opts;
    opts.port = static_cast<std::uint16_t>(port);
    opts.isServer = serve != 0;
    opts.numWorkers = serve ? std::optional<std::size_t>(world) : std::nullopt;
    // The rendezvous below names missing ranks; the server does not wait for them here.
    opts.waitWorkers = false;
    opts.timeout = std::chrono::milliseconds(timeout_ms);
    auto tcp = c10::make_intrusive<c10d::TCPStore>(host, opts);
    auto g = new Group();
    g->store = c10::make_intrusive<c10d::PrefixStore>(prefix, tcp);
    g->timeout = std::chrono::milliseconds(timeout_ms);
    *out = g;
  });
}

int aet_dist_set(void* g, const char* key, const char* value) {
  return guarded([&] { as_group(g)->store->set(key, std::string(value)); });
}

// Passes the value of `key` (waiting for it at most the group's timeout) to `sink`.
int aet_dist_get(void* g, const char* key, void (*sink)(void*, const char*, size_t),
                 void* out) {
  return guarded([&] {
    auto value = as_group(g)->store->get(key);
    sink(out, reinterpret_cast<const char*>(value.data()), value.size());
  });
}

// Sets *present to whether `key` is in the store, without waiting.
int aet_dist_check(void* g, const char* key, int* present) {
  return guarded([&] { *present = as_group(g)->store->check({key}) ? 1 : 0; });
}

// Waits for `key` (at most the group's timeout); a timeout is an error.
int aet_dist_wait(void* g, const char* key) {
  return guarded([&] { as_group(g)->store->wait({key}, as_group(g)->timeout); });
}

// Adds `delta` to the counter `key` and returns its new value in *value.
int aet_dist_add(void* g, const char* key, long long delta, long long* value) {
  return guarded([&] { *value = as_group(g)->store->add(key, delta); });
}

// Builds the Gloo process group (its own rendezvous through the store). The device binds
// to GLOO_SOCKET_IFNAME when set, to the loopback address when the master is local, else
// to the address this host's name resolves to (as torch.distributed does).
int aet_dist_group(void* g, const char* master, int rank, int world) {
  return guarded([&] {
    auto group = as_group(g);
    auto opts = c10d::ProcessGroupGloo::Options::create(group->timeout);
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (ifname != nullptr && *ifname != '\0') {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else if (loopback(master)) {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    group->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(group->store, rank, world, opts);
  });
}

// Builds the NCCL process group for CUDA tensors on device `device` (its communicators are
// made at the first collective).
int aet_dist_group_nccl(void* g, int rank, int world, int device) {
  return guarded([&] {
#ifdef USE_C10D_NCCL
    auto group = as_group(g);
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = group->timeout;
    auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(group->store, rank, world, opts);
    pg->setBoundDeviceId(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device)));
    group->pg = pg;
#else
    (void)g, (void)rank, (void)world, (void)device;
    throw std::runtime_error("this build has no NCCL backend");
#endif
  });
}

// Sums `t` (a contiguous tensor: CPU for Gloo, CUDA for NCCL) over the ranks, in place.
int aet_dist_allreduce(void* g, torch::Tensor* t) {
  return guarded([&] {
    auto group = as_group(g);
    if (!group->pg) throw std::runtime_error("no process group");
    std::vector<at::Tensor> tensors{*t};
    auto work = group->pg->allreduce(tensors);
    work->wait(group->timeout);
  });
}

void aet_dist_free(void* g) { delete as_group(g); }
}
