#include "io/tok_bpe.h"

#include <algorithm>
#include <climits>
#include <cstdio>

#include "io/tok_unicode.h"
#include "wick/error.h"

namespace wick::detail::tok {

namespace {

// Symbol counts up to this merge with a linear scan per step (faster for the short pieces of
// real text); longer ones use a heap.
constexpr size_t kLinearMergeMax = 48;

struct Scratch {
  std::vector<Bpe::Symbol> syms;
  std::vector<int32_t> ids;
  std::vector<int32_t> rank, new_id;
  std::string key;
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

}  // namespace

Bpe::Bpe(const io::Json& j, const Where& where) : where_(where.str()), cache_key_(new_cache_key()) {
  if (!j.contains("vocab")) throw Error(where.str() + ": missing field \"vocab\"");
  if (!j.contains("merges")) throw Error(where.str() + ": missing field \"merges\"");
  vocab_.load(j["vocab"], where.at("vocab"));

  auto dropout = io::json_optional<double>(j, "dropout", where.str());
  if (dropout && !(*dropout >= 0.0 && *dropout <= 1.0))
    throw Error(where.str() + ": dropout must be between 0 and 1");
  // Dropout makes encoding random; wick's encode is deterministic.
  if (dropout && *dropout > 0.0)
    throw Error(where.str() + ": BPE dropout is not supported");

  unk_ = opt_string(j, "unk_token", where);
  if (unk_) unk_id_ = vocab_.find(*unk_);
  prefix_ = opt_string(j, "continuing_subword_prefix", where).value_or("");
  suffix_ = opt_string(j, "end_of_word_suffix", where).value_or("");
  fuse_unk_ = get_bool(j, "fuse_unk", where, false);
  byte_fallback_ = get_bool(j, "byte_fallback", where, false);
  ignore_merges_ = get_bool(j, "ignore_merges", where, false);

  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    byte_ids_[b] = vocab_.find(name);
  }
  if (prefix_.empty() && suffix_.empty()) {
    bmp_ids_.assign(0x10000, -1);
    for (int32_t id = 0; id < vocab_.id_bound(); ++id) {
      const std::string* t = vocab_.token(id);
      if (!t || t->empty() || t->size() > 3) continue;
      size_t i = 0;
      char32_t c = next_cp(*t, i);
      if (i == t->size() && c < 0x10000) bmp_ids_[c] = id;
    }
  }
  load_merges(j["merges"], where.at("merges"));
}

void Bpe::load_merges(const io::Json& merges, const Where& where) {
  if (!merges.is_array())
    throw Error(where.str() + ": expected an array, got " + io::json_type_name(merges));
  merges_.reserve(merges.size());
  bool pairs = !merges.empty() && merges[0].is_array();
  std::string merged;
  int32_t rank = 0;
  for (size_t i = 0; i < merges.size(); ++i) {
    const io::Json& m = merges[i];
    std::string_view a, b;
    std::string line;
    if (pairs) {
      if (!m.is_array() || m.size() != 2 || !m[0].is_string() || !m[1].is_string())
        throw Error(where.index(i).str() + ": expected a pair of strings [\"a\", \"b\"]");
      a = m[0].get_ref<const std::string&>();
      b = m[1].get_ref<const std::string&>();
    } else {
      if (!m.is_string())
        throw Error(where.index(i).str() + ": expected a string \"a b\" (or every merge as a pair), got " +
                    io::json_type_name(m));
      const std::string& s = m.get_ref<const std::string&>();
      if (s.rfind("#version", 0) == 0) continue;
      size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        throw Error(where.index(i).str() + ": \"" + s + "\" is not two tokens separated by one space");
      a = std::string_view(s).substr(0, sp);
      b = std::string_view(s).substr(sp + 1);
    }
    int32_t ia = vocab_.find(a), ib = vocab_.find(b);
    if (ia < 0) throw Error(where.index(i).str() + ": token \"" + std::string(a) + "\" is not in the vocabulary");
    if (ib < 0) throw Error(where.index(i).str() + ": token \"" + std::string(b) + "\" is not in the vocabulary");
    // The merged token drops the right part's continuing-subword prefix (by length, as the
    // library does).
    if (b.size() < prefix_.size())
      throw Error(where.index(i).str() + ": token \"" + std::string(b) +
                  "\" is shorter than continuing_subword_prefix");
    merged.assign(a);
    merged.append(b.substr(prefix_.size()));
    int32_t im = vocab_.find(merged);
    if (im < 0)
      throw Error(where.index(i).str() + ": merged token \"" + merged + "\" is not in the vocabulary");
    merges_.set(ia, ib, {rank, im});
    ++rank;
  }
}

void Bpe::missing_unk() const {
  throw Error(where_ + ": unk_token \"" + unk_.value_or("") + "\" is not in the vocabulary");
}

int32_t Bpe::char_id(std::string_view ch, bool first, bool last) const {
  if (!bmp_ids_.empty()) {
    size_t i = 0;
    char32_t c = next_cp(ch, i);
    if (c < 0x10000) return bmp_ids_[c];
    return vocab_.find(ch);
  }
  std::string& key = scratch().key;
  key.clear();
  if (!first) key += prefix_;
  key.append(ch);
  if (last) key += suffix_;
  return vocab_.find(key);
}

void Bpe::initial_symbols(std::string_view w, std::vector<Symbol>& syms) const {
  syms.clear();
  auto add = [&](int32_t id, uint32_t len) {
    int32_t n = static_cast<int32_t>(syms.size());
    if (n > 0) syms.back().next = n;
    syms.push_back({id, n - 1, -1, len});
  };
  bool have_unk = false;
  int32_t unk_id = -1;
  uint32_t unk_len = 0;
  for (size_t i = 0; i < w.size();) {
    size_t start = i;
    i += utf8_len(static_cast<unsigned char>(w[i]));
    std::string_view ch = w.substr(start, i - start);
    bool first = start == 0, last = i >= w.size();
    int32_t id = char_id(ch, first, last);
    uint32_t byte_len = static_cast<uint32_t>(ch.size());
    if (id >= 0) {
      if (have_unk) {
        add(unk_id, unk_len);
        have_unk = false;
      }
      add(id, byte_len);
      continue;
    }
    if (byte_fallback_) {
      // The bytes of the decorated character, each as <0xXX>, when all exist.
      std::string decorated;
      if (!first) decorated += prefix_;
      decorated.append(ch);
      if (last) decorated += suffix_;
      bool all = true;
      for (unsigned char b : decorated) all = all && byte_ids_[b] >= 0;
      if (all) {
        for (unsigned char b : decorated) add(byte_ids_[b], 1);
        continue;
      }
    }
    if (!unk_) continue;  // no unk token: the character is dropped
    if (have_unk && fuse_unk_) {
      unk_len += byte_len;
    } else {
      if (have_unk) add(unk_id, unk_len);
      if (unk_id_ < 0) missing_unk();
      have_unk = true;
      unk_id = unk_id_;
      unk_len = byte_len;
    }
  }
  if (have_unk) add(unk_id, unk_len);
}

void Bpe::merge(std::vector<Symbol>& syms) const {
  size_t n = syms.size();
  if (n < 2) return;
  auto lookup = [&](int32_t i, int32_t& rank, int32_t& nid) {
    int32_t j = syms[i].next;
    const PairMap::Value* v = j >= 0 ? merges_.find(syms[i].id, syms[j].id) : nullptr;
    rank = v ? v->rank : INT32_MAX;
    nid = v ? v->id : -1;
  };
  auto do_merge = [&](int32_t i, int32_t nid) {
    int32_t j = syms[i].next;
    syms[i].id = nid;
    syms[i].len += syms[j].len;
    syms[i].next = syms[j].next;
    syms[j].len = 0;
    if (syms[j].next >= 0) syms[syms[j].next].prev = i;
  };

  if (n <= kLinearMergeMax) {
    Scratch& sc = scratch();
    sc.rank.resize(n);
    sc.new_id.resize(n);
    for (size_t i = 0; i + 1 < n; ++i) lookup(static_cast<int32_t>(i), sc.rank[i], sc.new_id[i]);
    sc.rank[n - 1] = INT32_MAX;
    while (true) {
      int32_t best = -1, best_rank = INT32_MAX;
      for (int32_t i = 0; i >= 0; i = syms[i].next)
        if (sc.rank[i] < best_rank) {
          best_rank = sc.rank[i];
          best = i;
        }
      if (best < 0) break;
      do_merge(best, sc.new_id[best]);
      lookup(best, sc.rank[best], sc.new_id[best]);
      int32_t p = syms[best].prev;
      if (p >= 0) lookup(p, sc.rank[p], sc.new_id[p]);
    }
    return;
  }

  // Heap of (rank, position) entries that remember the pair they were made for; an entry is
  // stale when its position was merged away or the pair there changed. (The library compares
  // the merged id instead; with distinct ids per token the two tests agree, since a symbol
  // only ever grows to the right.)
  struct Entry {
    int32_t rank, pos, id, left, right;
    bool operator>(const Entry& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<Entry> heap;
  heap.reserve(n);
  auto push = [&](int32_t i) {
    int32_t j = syms[i].next;
    if (j < 0) return;
    const PairMap::Value* v = merges_.find(syms[i].id, syms[j].id);
    if (!v) return;
    heap.push_back({v->rank, i, v->id, syms[i].id, syms[j].id});
    std::push_heap(heap.begin(), heap.end(), std::greater<>());
  };
  for (size_t i = 0; i + 1 < n; ++i) {
    const PairMap::Value* v = merges_.find(syms[i].id, syms[i + 1].id);
    if (v) heap.push_back({v->rank, static_cast<int32_t>(i), v->id, syms[i].id, syms[i + 1].id});
  }
  std::make_heap(heap.begin(), heap.end(), std::greater<>());
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    Entry top = heap.back();
    heap.pop_back();
    const Symbol& s = syms[top.pos];
    if (s.len == 0 || s.next < 0 || s.id != top.left || syms[s.next].id != top.right) continue;
    do_merge(top.pos, top.id);
    if (syms[top.pos].prev >= 0) push(syms[top.pos].prev);
    push(top.pos);
  }
}

void Bpe::tokenize(std::string_view piece, std::vector<int32_t>& out) const {
  if (!piece.empty()) tokenize_with(piece, thread_cache(cache_key_), out);
}

void Bpe::tokenize_pieces(const Pieces& p, std::vector<int32_t>& out) const {
  WordCache& cache = thread_cache(cache_key_);
  for (size_t i = 0; i < p.spans.size(); ++i)
    if (p.spans[i].second > p.spans[i].first) tokenize_with(p.piece(i), cache, out);
}

void Bpe::tokenize_with(std::string_view piece, WordCache& cache, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    int32_t id = vocab_.find(piece);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  uint64_t h = hash_bytes(piece);
  if (piece.size() <= WordCache::kMaxKeyBytes && cache.lookup(piece, h, out)) return;
  Scratch& sc = scratch();
  initial_symbols(piece, sc.syms);
  merge(sc.syms);
  size_t before = out.size();
  for (int32_t i = sc.syms.empty() ? -1 : 0; i >= 0; i = sc.syms[i].next) out.push_back(sc.syms[i].id);
  cache.insert(piece, h, out.data() + before, out.size() - before);
}

}  // namespace wick::detail::tok
