// Sanity peer for `wick bench tokenize`: @lenml/tokenizers (JavaScript) on the same corpus,
// single thread, same JSON line format. The real peer is tokenize_hf.py (the Rust library).
//
//   ./build/tools/wick/wick bench tokenize --write-text /tmp/corpus.txt
//   node bench/peers/tokenize_lenml.mjs /tmp/corpus.txt [qwen3 llama3 gemma3]
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const cache = path.join(root, ".cache/tokenizers");
const lib = await import(pathToFileURL(path.join(cache, "lenml-tokenizers/main.mjs")).href);
const [corpus, ...rest] = process.argv.slice(2);
if (!corpus) throw new Error("usage: tokenize_lenml.mjs CORPUS [names...]");
const names = rest.length ? rest : ["qwen3", "llama3", "gemma3"];
const text = fs.readFileSync(corpus, "utf8");
const lines = text.split("\n").filter((l, i, a) => i < a.length - 1 || l !== "");
const mb = Buffer.byteLength(text, "utf8") / 1e6;

function measure(fn, minTime = 2.0, minIters = 3) {
  fn();
  const samples = [];
  const start = performance.now();
  while (samples.length < minIters || (performance.now() - start) / 1e3 < minTime) {
    const t0 = performance.now();
    fn();
    samples.push((performance.now() - t0) * 1e3);
  }
  samples.sort((a, b) => a - b);
  const q = (p) => samples[Math.min(samples.length - 1, Math.round((samples.length - 1) * p))];
  return { median_us: q(0.5), p10_us: q(0.1), p90_us: q(0.9), iters: samples.length };
}

for (const name of names) {
  const dir = path.join(cache, name);
  if (!fs.existsSync(path.join(dir, "tokenizer.json"))) continue;
  const tok = lib.TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")),
    tokenizerConfig: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")),
  });
  let tokens = 0;
  for (const l of lines) tokens += tok.encode(l, { add_special_tokens: false }).length;
  const t = measure(() => {
    for (const l of lines) tok.encode(l, { add_special_tokens: false });
  });
  const s = t.median_us * 1e-6;
  console.log(JSON.stringify({ name: `tokenize_lenml/${name}/encode_batch_1t`, ...t,
                               mb_per_s: mb / s, tokens_per_s: tokens / s, tokens }));
}
