#pragma once
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>

namespace wick {

/// Element types. f64 is there for reference checks (finite differences); models use the rest.
enum class DType : uint8_t { f32, f64, f16, bf16, i32, i64, boolean };

inline constexpr DType f32 = DType::f32;
inline constexpr DType f64 = DType::f64;
inline constexpr DType f16 = DType::f16;
inline constexpr DType bf16 = DType::bf16;
inline constexpr DType i32 = DType::i32;
inline constexpr DType i64 = DType::i64;
inline constexpr DType boolean = DType::boolean;

/// Bytes per element.
size_t itemsize(DType t);
/// "f32", "bf16", ...
const char* dtype_name(DType t);
bool is_floating(DType t);
bool is_integral(DType t);  // i32, i64 (not bool)

/// Promotion for binary ops, as in PyTorch for tensor-tensor operands:
/// bool < i32 < i64 < any float; among floats f16+bf16 -> f32, otherwise the wider one.
DType promote_types(DType a, DType b);

/// IEEE binary16 stored as bits; converts through float.
struct float16 {
  uint16_t bits = 0;
  float16() = default;
  explicit float16(float f);
  explicit operator float() const;
};

/// bfloat16 stored as bits; converts through float with round-to-nearest-even.
struct bfloat16 {
  uint16_t bits = 0;
  bfloat16() = default;
  explicit bfloat16(float f) {
    uint32_t u = std::bit_cast<uint32_t>(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {  // NaN: keep it quiet and a NaN
      bits = static_cast<uint16_t>((u >> 16) | 0x40);
    } else {
      bits = static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
  }
  explicit operator float() const { return std::bit_cast<float>(uint32_t(bits) << 16); }
};

float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
inline float16::float16(float f) : bits(float_to_half(f)) {}
inline float16::operator float() const { return half_to_float(bits); }

/// The DType of a C++ element type (compile-time map used by from-host creation and read-back).
template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<float16> { static constexpr DType value = DType::f16; };
template <> struct dtype_of<bfloat16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::boolean; };
template <class T> inline constexpr DType dtype_of_v = dtype_of<T>::value;

}  // namespace wick
