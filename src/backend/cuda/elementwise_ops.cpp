// CUDA implementations of the creation, elementwise, copy and reduction primitives, and of the
// host <-> device copy.
#include <algorithm>
#include <cstring>

#include "backend/composed.h"
#include "backend/cuda/glue.h"
#include "core/cuda_api.h"

namespace wick::cuda {

const void* dense(const Node& n, std::shared_ptr<detail::Storage>& hold) {
  if (n.contiguous()) return n.raw();
  hold = detail::allocate(std::max<size_t>(1, n.size() * itemsize(n.dtype)), n.device);
  auto s = make_space<2>(n.shape, {contiguous_strides(n.shape), n.strides});
  cast(n.dtype, n.raw(), s.walks[1], n.dtype, hold->ptr, s.walks[0], s.space);
  return hold->ptr;
}

namespace {

/// Copies the view `x` into `out`'s view described by (dst strides, element offset).
void copy_into(const Node& x, Node& out, const Strides& dst, int64_t offset) {
  auto s = make_space<2>(x.shape, {dst, x.strides});
  void* base = static_cast<char*>(out.raw()) + offset * static_cast<int64_t>(itemsize(out.dtype));
  cast(x.dtype, x.raw(), s.walks[1], out.dtype, base, s.walks[0], s.space);
}

}  // namespace
}  // namespace wick::cuda

namespace wick::detail {
using namespace cuda;

void Full::eval_cuda(std::span<Node* const>, Node& out) {
  on(out);
  alloc_output(out);
  fill(out.raw(), out.size(), out.dtype, value);
}

void Arange::eval_cuda(std::span<Node* const>, Node& out) {
  on(out);
  alloc_output(out);
  arange(out.raw(), out.size(), out.dtype, start, step);
}

void PositionMask::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  alloc_output(out);
  position_mask(out.data<float>(), out.shape[2], out.shape[3],
                static_cast<const int64_t*>(in[0]->raw()), window);
}

void Random::eval_cuda(std::span<Node* const>, Node& out) {
  on(out);
  alloc_output(out);
  random(out.raw(), out.size(), out.dtype, kind == Kind::normal, seed, counter, a, b);
}

void Unary::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  alloc_output_donating(out, in);
  auto s = make_space<2>(out.shape, {out.strides, aligned_strides(*in[0], out.shape.size())});
  unary(static_cast<int>(op), out.dtype, in[0]->raw(), s.walks[1], out.raw(), s.walks[0], s.space);
}

void Binary::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  if (out.dtype == in[0]->dtype)
    alloc_output_donating(out, in);
  else
    alloc_output(out);
  size_t nd = out.shape.size();
  auto s = make_space<3>(out.shape,
                         {out.strides, aligned_strides(*in[0], nd), aligned_strides(*in[1], nd)});
  binary(static_cast<int>(op), in[0]->dtype, out.dtype, in[0]->raw(), s.walks[1], in[1]->raw(),
         s.walks[2], out.raw(), s.walks[0], s.space);
}

void Where::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  alloc_output(out);
  size_t nd = out.shape.size();
  auto s = make_space<4>(out.shape, {out.strides, aligned_strides(*in[0], nd),
                                     aligned_strides(*in[1], nd), aligned_strides(*in[2], nd)});
  where(in[0]->raw(), s.walks[1], out.dtype, in[1]->raw(), s.walks[2], in[2]->raw(), s.walks[3],
        out.raw(), s.walks[0], s.space);
}

void AsType::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  alloc_output(out);
  copy_into(*in[0], out, out.strides, 0);
}

void Copy::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  alloc_output(out);
  copy_into(*in[0], out, out.strides, 0);
}

void Reshape::eval_cuda(std::span<Node* const> in, Node& out) {
  Strides s;
  if (reshape_strides(*in[0], out.shape, s)) {
    make_view(out, *in[0], std::move(s), in[0]->offset);
    return;
  }
  on(out);
  alloc_output(out);
  // The input's elements in row-major order land in the output's row-major order.
  std::shared_ptr<Storage> hold;
  const void* src = dense(*in[0], hold);
  check(cudaMemcpyAsync(out.raw(), src, out.size() * itemsize(out.dtype), cudaMemcpyDeviceToDevice,
                        launch_stream()),
        "reshape copy");
}

void SliceUpdate::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  const Node& x = *in[0];
  const Node& u = *in[1];
  Node* const donor[] = {in[0]};
  if (!alloc_output_donating(out, donor)) copy_into(x, out, out.strides, 0);
  if (u.size() == 0) return;
  Strides dst = out.strides;
  int64_t off = 0;
  for (size_t d = 0; d < dst.size(); ++d) {
    off += start[d] * dst[d];
    dst[d] *= step[d];
  }
  copy_into(u, out, dst, off);
}

void WriteAt::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  const Node& buf = *in[0];
  const Node& u = *in[1];
  make_view(out, buf, buf.strides, buf.offset);
  out.storage->side_tag.store(0, std::memory_order_relaxed);  // written in place
  const size_t nd = buf.shape.size();
  if (!rope.empty() && u.size() > 0) {
    // One kernel rotates the rows and writes them at the position when the buffer is dense
    // (a KV cache [B, H, S, D]); otherwise rotate first, then write.
    const int64_t D = buf.shape[nd - 1], S = buf.shape[nd - 2];
    const int64_t* position = static_cast<const int64_t*>(in[2]->raw());
    if (static_cast<size_t>(axis) == nd - 2 && buf.contiguous()) {
      std::shared_ptr<Storage> hold;
      const void* up = dense(u, hold);
      const int64_t T = u.shape[nd - 2];
      cuda::rope(out.dtype, up, out.raw(), u.size() / (T * D), T, D, rope.data(), 0, position, {S * D, true, S});
      return;
    }
    std::unique_ptr<Node> turned = rotated(rope, in[1], in[2]);
    WriteAt plain(axis);
    Node* ins[3] = {in[0], turned.get(), in[2]};
    plain.eval_cuda(ins, out);
    return;
  }
  auto s = make_space<2>(u.shape, {out.strides, u.strides});
  write_at(out.dtype, u.raw(), s.walks[1], out.raw(), s.walks[0], s.space,
           static_cast<const int64_t*>(in[2]->raw()), out.strides[axis], u.shape[axis],
           buf.shape[axis]);
}

void Concatenate::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  alloc_output(out);
  // Dense pieces of the output's dtype that each fill one run of it (nothing but size-1 axes
  // before `axis`) go many to a launch: flattening an optimizer's hundreds of small tensors
  // would otherwise be hundreds of launches.
  bool pieces = out.contiguous();
  for (int d = 0; d < axis; ++d) pieces = pieces && out.shape[d] == 1;
  for (Node* x : in) pieces = pieces && x->dtype == out.dtype && x->contiguous();
  if (pieces && in.size() > 1) {
    CopyPieces p;
    const int64_t row = out.size() / std::max<int64_t>(out.shape[axis], 1) * static_cast<int64_t>(itemsize(out.dtype));
    int64_t at = 0;
    for (Node* x : in) {
      p.add(x->raw(), static_cast<char*>(out.raw()) + at * row, x->size() * static_cast<int64_t>(itemsize(x->dtype)));
      at += x->shape[axis];
    }
    copy_pieces(p);
    return;
  }
  int64_t at = 0;
  for (Node* x : in) {
    if (x->size()) copy_into(*x, out, out.strides, at * out.strides[axis]);
    at += x->shape[axis];
  }
}

namespace {

/// A chain too long for the fused kernel's parameter block runs instruction by instruction with
/// the plain kernels: the same arithmetic and roundings, one pass over memory per instruction.
void run_unfused(const FusedElementwise& f, std::span<Node* const> in, Node& out) {
  struct Reg {
    const void* p;
    DType t;
    Strides st;
    std::shared_ptr<Storage> hold;
  };
  size_t nd = out.shape.size();
  std::vector<Reg> regs;
  for (Node* x : in) regs.push_back({x->raw(), x->dtype, aligned_strides(*x, nd), nullptr});
  Strides dense = contiguous_strides(out.shape);
  for (const FusedElementwise::Instr& ins : f.program) {
    auto buf = detail::allocate(std::max<size_t>(1, out.size() * itemsize(ins.dtype)), out.device);
    const Reg& a = regs[ins.a];
    using K = FusedElementwise::Kind;
    if (ins.kind == K::unary) {
      auto s = make_space<2>(out.shape, {dense, a.st});
      unary(ins.op, ins.dtype, a.p, s.walks[1], buf->ptr, s.walks[0], s.space);
    } else if (ins.kind == K::binary) {
      const Reg& b = regs[ins.b];
      auto s = make_space<3>(out.shape, {dense, a.st, b.st});
      binary(ins.op, a.t, ins.dtype, a.p, s.walks[1], b.p, s.walks[2], buf->ptr, s.walks[0],
             s.space);
    } else if (ins.kind == K::where) {
      const Reg& b = regs[ins.b];
      const Reg& c = regs[ins.c];
      auto s = make_space<4>(out.shape, {dense, a.st, b.st, c.st});
      where(a.p, s.walks[1], ins.dtype, b.p, s.walks[2], c.p, s.walks[3], buf->ptr, s.walks[0],
            s.space);
    } else {
      auto s = make_space<2>(out.shape, {dense, a.st});
      cast(a.t, a.p, s.walks[1], ins.dtype, buf->ptr, s.walks[0], s.space);
    }
    regs.push_back({buf->ptr, ins.dtype, dense, buf});
  }
  out.storage = regs.back().hold;
  out.strides = dense;
  out.offset = 0;
}

}  // namespace

void FusedElementwise::eval_cuda(std::span<Node* const> in, Node& out) {
  static_assert(static_cast<int>(Kind::unary) == 0 && static_cast<int>(Kind::binary) == 1 &&
                static_cast<int>(Kind::where) == 2 && static_cast<int>(Kind::cast) == 3);
  on(out);
  if (in.size() > static_cast<size_t>(kMaxFusedInputs) ||
      program.size() > static_cast<size_t>(kMaxFusedInstrs) || program.empty() ||
      program.back().dtype != out.dtype)
    return run_unfused(*this, in, out);
  alloc_output(out);
  FusedArgs f;
  f.n_in = static_cast<int>(in.size());
  f.n_instr = static_cast<int>(program.size());
  f.f64 = this->f64;
  f.out_t = out.dtype;
  for (size_t k = 0; k < program.size(); ++k) {
    const Instr& p = program[k];
    f.ins[k] = {static_cast<uint8_t>(p.kind),
                p.op,
                p.dtype,
                static_cast<int16_t>(p.a),
                static_cast<int16_t>(p.b),
                static_cast<int16_t>(p.c)};
  }
  // One space for all inputs: merge axes only where every input (and the dense output) agrees.
  size_t nd = out.shape.size();
  Spaced<kMaxFusedInputs + 1> s;
  std::array<Strides, kMaxFusedInputs + 1> st;
  st[0] = out.strides;
  for (size_t i = 0; i < in.size(); ++i) st[i + 1] = aligned_strides(*in[i], nd);
  for (size_t i = in.size() + 1; i < st.size(); ++i) st[i] = Strides(nd, 0);
  s = make_space<kMaxFusedInputs + 1>(out.shape, st);
  for (size_t i = 0; i < in.size(); ++i) {
    f.in[i] = in[i]->raw();
    f.in_t[i] = in[i]->dtype;
    f.in_s[i] = s.walks[i + 1];
  }
  if (!launch_generated(f, out.raw(), s.space)) fused(f, out.raw(), s.space);
}

void Reduce::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  alloc_output(out);
  const Node& x = *in[0];
  Shape ks, rs;
  Strides kst, rst;
  for (size_t d = 0; d < x.shape.size(); ++d) {
    bool red = std::find(axes.begin(), axes.end(), static_cast<int>(d)) != axes.end();
    (red ? rs : ks).push_back(x.shape[d]);
    (red ? rst : kst).push_back(x.strides[d]);
  }
  auto kept = make_space<1>(ks, {kst});
  auto red = make_space<1>(rs, {rst});
  reduce(static_cast<int>(op), out.dtype, x.raw(), kept.space, kept.walks[0], red.space,
         red.walks[0], out.raw());
}

void ArgReduce::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  alloc_output(out);
  const Node& x = *in[0];
  Shape ks;
  Strides kst;
  for (size_t d = 0; d < x.shape.size(); ++d)
    if (static_cast<int>(d) != axis) {
      ks.push_back(x.shape[d]);
      kst.push_back(x.strides[d]);
    }
  auto kept = make_space<1>(ks, {kst});
  argreduce(is_max, x.dtype, x.raw(), kept.space, kept.walks[0], x.shape[axis], x.strides[axis],
            out.data<int64_t>());
}

void ToDevice::eval_cuda(std::span<Node* const> in, Node& out) {
  const Node& x = *in[0];  // dense (the builder made it so)
  size_t bytes = out.size() * itemsize(out.dtype);
  if (x.device.type == Device::Type::cuda)
    cuda_api::synchronize(x.device.index);  // this lane there, which waited for its producer
  on(out);
  alloc_output(out);
  if (!bytes) return;
  if (x.device.type == Device::Type::cpu) {
    // From pageable memory the call returns once the source has been staged, so the host buffer
    // may be freed at once. From pinned memory it returns at once: the copy reads the buffer
    // later, so its block is not handed out again before the event after the copy.
    const bool pinned = x.storage && x.storage->pinned;
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    if (pinned) check(cudaStreamIsCapturing(launch_stream(), &capturing), "copy to device");
    if (capturing != cudaStreamCaptureStatusNone)
      throw Error(
          "copy to device: a CUDA graph cannot read pinned host memory (its block is reused)");
    check(cudaMemcpyAsync(out.raw(), x.raw(), bytes, cudaMemcpyHostToDevice, launch_stream()),
          "copy to device");
    if (pinned)
      detail::note_device_read(*x.storage, out.device.index, detail::this_lane,
                               cuda_api::record_event(out.device.index));
  } else {
    check(
        cudaMemcpyPeerAsync(out.raw(), out.device.index, x.raw(), x.device.index, bytes, launch_stream()),
        "copy between devices");
  }
}

void ToDevice::eval_cpu(std::span<Node* const> in, Node& out) {
  const Node& x = *in[0];
  alloc_output(out);
  size_t bytes = out.size() * itemsize(out.dtype);
  Context& c = activate(x.device.index);
  if (x.settled.load(std::memory_order_acquire)) {
    // Its kernels have finished: copy beside the device's stream, not behind the work queued
    // there since (a decoding step reads its token while the next step computes).
    if (bytes)
      check(cudaMemcpyAsync(out.raw(), x.raw(), bytes, cudaMemcpyDeviceToHost, c.copy_stream), "copy to host");
    check(cudaStreamSynchronize(c.copy_stream), "copy to host");
    return;
  }
  if (bytes)
    check(cudaMemcpyAsync(out.raw(), x.raw(), bytes, cudaMemcpyDeviceToHost, launch_stream()),
          "copy to host");
  cuda_api::synchronize(x.device.index);
}

void GreedyPick::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  const Node& x = *in[0];
  std::shared_ptr<Storage> hold;
  const void* xp = x.strides[1] == 1 ? x.raw() : dense(x, hold);
  const int64_t ld = x.strides[1] == 1 ? x.strides[0] : x.shape[1];
  alloc_output(out);
  auto scratch = detail::allocate(greedy_pick_scratch(x.shape[0], x.shape[1]), out.device);
  greedy_pick(x.dtype, xp, x.shape[0], x.shape[1], ld, out.data<float>(), scratch->ptr);
}

}  // namespace wick::detail
