// A kernel timeline for any CUDA program, CUDA graphs included, for machines without Nsight
// Systems. The driver loads it through CUDA_INJECTION64_PATH; CUPTI then records every kernel's
// start and end, also the kernels a graph replays and those that overlap under programmatic
// dependent launch, and every memory copy and set (what runs between a graph's replays), and at
// exit they are written as CSV to $WICK_TRACE_OUT:
//
//   g++ -O2 -shared -fPIC -o kernel_trace.so bench/cuda/kernel_trace.cpp \
//       -I/usr/local/cuda/include -L/usr/local/cuda/lib64 -lcupti
//   CUDA_INJECTION64_PATH=$PWD/kernel_trace.so WICK_TRACE_OUT=t.csv wick bench decode ...
//   python3 bench/cuda/kernel_trace.py t.csv
#include <cupti.h>
#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace {

struct Row {
  uint64_t start, end, graph, stream;
  std::string name;
};
std::vector<Row> rows;
std::mutex rows_mutex;
constexpr size_t kBufferBytes = 16 << 20;

// The function's name without its namespaces, template arguments or parameters: "gemv_kernel".
std::string short_name(const char* mangled) {
  int status = 0;
  char* full = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string s = status == 0 && full ? full : mangled;
  std::free(full);
  for (size_t at; (at = s.find("(anonymous namespace)::")) != std::string::npos;) s.erase(at, 23);
  std::string out;  // s without anything inside <> or ()
  int depth = 0;
  for (char c : s) {
    if (c == '<' || c == '(') ++depth;
    if (depth == 0) out += c;
    if ((c == '>' || c == ')') && depth > 0) --depth;
  }
  if (const size_t space = out.rfind(' '); space != std::string::npos) out = out.substr(space + 1);
  if (const size_t colon = out.rfind("::"); colon != std::string::npos) out = out.substr(colon + 2);
  return out;
}

void CUPTIAPI on_request(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = kBufferBytes;
  *max_records = 0;
}

void CUPTIAPI on_complete(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  CUpti_Activity* record = nullptr;
  std::lock_guard lock(rows_mutex);
  while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
    if (record->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) {
      const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
      rows.push_back({k->start, k->end, k->graphId, k->streamId, short_name(k->name)});
    } else if (record->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
      const auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(record);
      static const char* kinds[] = {"?", "HtoD", "DtoH", "HtoA", "AtoH", "AtoA", "AtoD", "DtoA", "DtoD", "HtoH"};
      const char* kind = m->copyKind < 10 ? kinds[m->copyKind] : "?";
      rows.push_back({m->start, m->end, m->graphId, m->streamId,
                      std::string("memcpy_") + kind + "_" + std::to_string(m->bytes) + "B"});
    } else if (record->kind == CUPTI_ACTIVITY_KIND_MEMSET) {
      const auto* m = reinterpret_cast<const CUpti_ActivityMemset4*>(record);
      rows.push_back({m->start, m->end, m->graphId, m->streamId, "memset_" + std::to_string(m->bytes) + "B"});
    }
  }
  std::free(buffer);
}

void write_rows() {
  cuptiActivityFlushAll(1);
  const char* path = std::getenv("WICK_TRACE_OUT");
  FILE* f = std::fopen(path ? path : "kernel_trace.csv", "w");
  if (!f) return;
  std::fprintf(f, "start_ns,end_ns,graph,stream,kernel\n");
  std::lock_guard lock(rows_mutex);
  for (const Row& r : rows)
    std::fprintf(f, "%llu,%llu,%llu,%llu,%s\n", static_cast<unsigned long long>(r.start),
                 static_cast<unsigned long long>(r.end), static_cast<unsigned long long>(r.graph),
                 static_cast<unsigned long long>(r.stream), r.name.c_str());
  std::fclose(f);
}

}  // namespace

extern "C" int InitializeInjection() {
  if (cuptiActivityRegisterCallbacks(on_request, on_complete) != CUPTI_SUCCESS) return 0;
  for (CUpti_ActivityKind kind :
       {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY, CUPTI_ACTIVITY_KIND_MEMSET})
    if (cuptiActivityEnable(kind) != CUPTI_SUCCESS) return 0;
  std::atexit(write_rows);
  return 1;
}
