#pragma once
#include <cstdint>
#include <string>

namespace wick {

/// Where a tensor lives and its kernels run.
struct Device {
  enum class Type : uint8_t { cpu, cuda };
  Type type = Type::cpu;
  int index = 0;

  static Device cpu() { return {Type::cpu, 0}; }
  static Device cuda(int i = 0) { return {Type::cuda, i}; }
  bool operator==(const Device&) const = default;
  std::string str() const;
};

/// An ordered queue of evaluations on one device, served by one worker. Evaluations on one
/// stream run in submission order; dependencies across streams are waited for.
struct Stream {
  int id = 0;
  Device device = Device::cpu();
  bool operator==(const Stream&) const = default;
};

/// The stream evaluations go to unless told otherwise.
Stream default_stream(Device d = Device::cpu());
/// A new stream with its own worker on device `d`.
Stream new_stream(Device d = Device::cpu());

}  // namespace wick
