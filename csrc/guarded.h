// Shared by the C shims (script.cpp, dist.cpp): a C API cannot carry C++ exceptions, so
// every entry point runs its body here and returns 0, or 1 with the message kept in
// `error` for the shim's *_last_error() to hand out.
#pragma once

#include <exception>
#include <string>
#include <utility>

namespace aet {
template <typename F>
int guarded(std::string& error, F&& body) {
  try {
    body();
    return 0;
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "unknown C++ exception";
  }
  return 1;
}
}  // namespace aet
