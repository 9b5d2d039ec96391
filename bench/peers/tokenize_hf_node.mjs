// The Rust `tokenizers` library through its official Node binding (npm `tokenizers`, fetched by
// `bash scripts/fetch-tokenizers.sh hf-node`), timed on the corpus of `wick bench tokenize` with
// the same entries and JSON line format, on one thread unless THREADS is given:
//
//   ./build/tools/wick/wick bench tokenize --write-text /tmp/corpus.txt --json
//   node bench/peers/tokenize_hf_node.mjs /tmp/corpus.txt [qwen3 llama3 gemma3]
//
// encode_text_1t: one encode() of the whole text; encode_batch_1t: encodeBatch() over the lines
// (rayon held to one thread); decode_1t: decode() of the whole text's ids. Each timed call is
// awaited, so it ends with the result complete. The binding builds an Encoding object (ids,
// offsets, ...) per result, as the Python binding does.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

process.env.RAYON_NUM_THREADS = process.env.THREADS ?? "1";  // before the pool starts
process.env.TOKENIZERS_PARALLELISM = process.env.THREADS ? "true" : "false";
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const cache = path.join(root, ".cache/tokenizers");
const require = createRequire(import.meta.url);
const hf = require(path.join(cache, "hf-node/index.js"));
const [corpus, ...rest] = process.argv.slice(2);
if (!corpus) throw new Error("usage: tokenize_hf_node.mjs CORPUS [names...]");
const names = rest.length ? rest : ["qwen3", "llama3", "gemma3"];
const text = fs.readFileSync(corpus, "utf8");
const lines = text.split("\n");
if (lines.length && lines[lines.length - 1] === "") lines.pop();
const mb = Buffer.byteLength(text, "utf8") / 1e6;
const quick = process.env.QUICK === "1";

async function measure(fn) {
  await fn();
  const samples = [];
  const start = performance.now();
  while (samples.length < (quick ? 2 : 5) || (performance.now() - start) / 1e3 < (quick ? 0.2 : 2.0)) {
    const t0 = performance.now();
    await fn();
    samples.push((performance.now() - t0) * 1e3);
  }
  samples.sort((a, b) => a - b);
  const q = (p) => {
    const k = (samples.length - 1) * p, lo = Math.floor(k), hi = Math.min(lo + 1, samples.length - 1);
    return samples[lo] + (samples[hi] - samples[lo]) * (k - lo);
  };
  return { median_us: q(0.5), p10_us: q(0.1), p90_us: q(0.9), iters: samples.length };
}

const suffix = process.env.THREADS ? "mt" : "1t";
for (const name of names) {
  const file = path.join(cache, name, "tokenizer.json");
  if (!fs.existsSync(file)) continue;
  const tok = hf.Tokenizer.fromFile(file);
  const report = (what, t, tokens) => {
    const s = t.median_us * 1e-6;
    console.log(JSON.stringify({ name: `tokenize_hf_node/${name}/${what}`, ...t, mb_per_s: mb / s,
                                 tokens_per_s: tokens / s, tokens }));
  };
  const opts = { addSpecialTokens: false };
  const ids = Array.from((await tok.encode(text, null, opts)).getIds());
  let batchTokens = 0;
  for (const e of await tok.encodeBatch(lines, opts)) batchTokens += e.getIds().length;
  if (!process.env.THREADS) report("encode_text_1t", await measure(() => tok.encode(text, null, opts)), ids.length);
  report(`encode_batch_${suffix}`, await measure(() => tok.encodeBatch(lines, opts)), batchTokens);
  if (!process.env.THREADS) report("decode_1t", await measure(() => tok.decode(ids, false)), ids.length);
}
