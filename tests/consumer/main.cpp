// Checks that an installed wick can be found, compiled against and run: a matmul followed by a
// softmax, evaluated lazily, compared with values worked out by hand.
#include <wick/wick.h>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  try {
    // a = [[1, 2], [3, 4]], b = identity scaled by 0.5 -> a·b = [[0.5, 1], [1.5, 2]].
    wick::Tensor a = wick::Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2});
    wick::Tensor b = wick::Tensor::from_vector<float>({0.5f, 0, 0, 0.5f}, {2, 2});
    wick::Tensor p = wick::softmax(wick::matmul(a, b), -1);
    if (p.shape() != wick::Shape{2, 2}) {
      std::fprintf(stderr, "consumer: unexpected shape %s\n", wick::shape_str(p.shape()).c_str());
      return 1;
    }
    wick::eval({p});
    std::vector<float> got = p.to_vector<float>();
    // Each row differs by 0.5 between its two logits: softmax = [1/(1+e^0.5), e^0.5/(1+e^0.5)].
    const double lo = 1.0 / (1.0 + std::exp(0.5)), hi = 1.0 - lo;
    const double want[4] = {lo, hi, lo, hi};
    for (int i = 0; i < 4; ++i) {
      if (std::abs(got[i] - want[i]) > 1e-6) {
        std::fprintf(stderr, "consumer: element %d is %.7f, expected %.7f\n", i, got[i], want[i]);
        return 1;
      }
    }
    std::printf("consumer OK: softmax(a·b) = [[%.6f, %.6f], [%.6f, %.6f]]\n", got[0], got[1],
                got[2], got[3]);
    return 0;
  } catch (const wick::Error& e) {
    std::fprintf(stderr, "consumer: wick error: %s\n", e.what());
    return 1;
  }
}
