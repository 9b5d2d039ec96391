// Leaving the process while asynchronous evaluations are still running. A program that
// submits work and returns from main (or calls exit) must terminate cleanly: the stream
// workers may not keep running kernels while the process tears down the libraries they use.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>

#include "common/tensor_util.h"

namespace {

using namespace wt;
using wick::Tensor;

/// Queues several long GEMM chains on fresh streams and returns without waiting.
void fire_long_work() {
  Tensor x = to_tensor(random_host({384, 384}, DType::f32, 1, -0.05, 0.05), DType::f32);
  for (int s = 0; s < 4; ++s) {
    wick::Stream st = wick::new_stream();
    Tensor y = x;
    for (int i = 0; i < 12; ++i) y = wick::matmul(y, x) + 0.01;
    (void)wick::eval_async({y}, st);
  }
}

TEST(Exit, ExitWhileWorkIsInFlight) {
  // Each death-test child re-runs this binary for this test only, so its streams, thread
  // pools and library state are its own. The child exits while the workers are inside GEMMs
  // (exit() runs the same static destructors as returning from main).
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  for (int rep = 0; rep < 3 && !HasFailure(); ++rep) {
    SCOPED_TRACE(rep);
    EXPECT_EXIT(
        {
          // A crash during exit can hang instead (e.g. a sanitizer's report deadlocking on
          // loader locks held by the exiting thread); the alarm bounds it (signal 14).
          alarm(15);
          fire_long_work();
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          std::exit(0);
        },
        ::testing::ExitedWithCode(0), "");
  }
}

TEST(Exit, ExitAfterWaitingIsClean) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        alarm(15);
        Tensor x = to_tensor(random_host({64, 64}, DType::f32, 2), DType::f32);
        wick::eval_async({wick::matmul(x, x)}, wick::new_stream()).get();
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
