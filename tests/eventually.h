#pragma once
// Waiting on a condition, never for time to pass: polls `pred` until it holds or `timeout` passes.
// Shared by the unit and integration tests.
#include <chrono>
#include <thread>

namespace ion::test {

using namespace std::chrono_literals;

// Returns whether `pred` held before `timeout`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 20s) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return pred();
}

}  // namespace ion::test
