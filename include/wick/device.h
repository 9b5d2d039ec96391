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

/// CUDA devices this build and machine can use: 0 without a CUDA build, driver or GPU.
int cuda_device_count();

/// The device that tensors built without tensor inputs (full, arange, random, zeros, ...) go
/// to on this thread: cpu, unless a DeviceScope says otherwise.
Device default_device();

/// While alive, tensors built without tensor inputs on this thread are placed on `d`. Nests.
class DeviceScope {
 public:
  explicit DeviceScope(Device d);
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  Device prev_;
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
