// Builders of creation ops: constants, ranges and seeded random draws.
#include <cmath>
#include <cstring>

#include "graph/ops_common.h"
#include "wick/random.h"

namespace wick {
namespace detail {

bool Full::is_equivalent(const Primitive& o) const {
  auto* f = dynamic_cast<const Full*>(&o);
  return f && (f->value == value || (std::isnan(f->value) && std::isnan(value)));
}

namespace {
void check_shape(const Shape& shape, const char* op) {
  for (int64_t d : shape)
    if (d < 0) throw Error(std::string(op) + ": negative dimension in shape " + shape_str(shape));
}
}  // namespace

}  // namespace detail

using namespace detail;

Tensor full(const Shape& shape, double value, DType dtype) {
  check_shape(shape, "full");
  return build<Full>(shape, dtype, {}, value);
}
Tensor zeros(const Shape& shape, DType dtype) { return full(shape, 0.0, dtype); }
Tensor ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }
Tensor zeros_like(const Tensor& x) { return full_like(x, 0.0); }
Tensor ones_like(const Tensor& x) { return full_like(x, 1.0); }
Tensor full_like(const Tensor& x, double value) {
  DeviceScope on(x.device());
  return full(x.shape(), value, x.dtype());
}

Tensor scalar(double value, DType dtype) {
  // Stored directly (no kernel): scalars are built constantly as operands.
  alignas(8) unsigned char buf[8] = {};
  switch (dtype) {
    case DType::f32: { float v = float(value); std::memcpy(buf, &v, 4); break; }
    case DType::f64: std::memcpy(buf, &value, 8); break;
    case DType::f16: { float16 v{static_cast<float>(value)}; std::memcpy(buf, &v, 2); break; }
    case DType::bf16: { bfloat16 v{static_cast<float>(value)}; std::memcpy(buf, &v, 2); break; }
    case DType::i32: { int32_t v = int32_t(value); std::memcpy(buf, &v, 4); break; }
    case DType::i64: { int64_t v = int64_t(value); std::memcpy(buf, &v, 8); break; }
    case DType::boolean: buf[0] = value != 0; break;
  }
  return Tensor::from_bytes(buf, {}, dtype);
}

Tensor arange(double start, double stop, double step, DType dtype) {
  if (step == 0 || !std::isfinite(start) || !std::isfinite(stop) || !std::isfinite(step))
    throw Error("arange: step must be non-zero and bounds finite");
  int64_t n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((stop - start) / step)));
  return build<Arange>({n}, dtype, {}, start, step);
}
Tensor arange(int64_t n, DType dtype) { return arange(0.0, static_cast<double>(n), 1.0, dtype); }

namespace {
Tensor random(Random::Kind kind, const Shape& shape, Generator& gen, double a, double b, DType dtype,
              const char* op) {
  check_shape(shape, op);
  if (!is_floating(dtype)) throw Error(std::string(op) + ": floating dtype expected, got " + dtype_name(dtype));
  // One Philox call yields four 32-bit words: two samples' worth of 64-bit uniform pairs.
  uint64_t counters = (static_cast<uint64_t>(numel(shape)) + 1) / 2 + 1;
  uint64_t c = gen.advance(counters);
  return build<Random>(shape, dtype, {}, kind, gen.seed(), c, a, b);
}
}  // namespace

Tensor normal(const Shape& shape, Generator& gen, double mean, double std, DType dtype) {
  if (!(std >= 0)) throw Error("normal: std must be >= 0");
  return random(Random::Kind::normal, shape, gen, mean, std, dtype, "normal");
}
Tensor uniform(const Shape& shape, Generator& gen, double low, double high, DType dtype) {
  if (!(high >= low)) throw Error("uniform: high must be >= low");
  return random(Random::Kind::uniform, shape, gen, low, high, dtype, "uniform");
}

}  // namespace wick
