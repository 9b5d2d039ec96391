// Random differential fixtures from the Hugging Face `tokenizers` library (its Node binding):
// thousands of texts stitched from characters and strings that stress every stage (spaces of
// every kind, line breaks, contractions, digits, marks, ZWJ emoji, special tokens, controls,
// unassigned code points, byte-fallback lookalikes). tokenizer_parity_test runs them when they
// exist (the RandomTexts cases); they are not committed.
//
//   bash scripts/fetch-tokenizers.sh && bash scripts/fetch-tokenizers.sh hf-node
//   node tests/tools/make_tokenizer_random_fixtures.mjs [count=5000] [seed=1]
//
// Writes .cache/tokenizer-random/<name>_expected.json for qwen3, llama3, gemma3, bert_tiny.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const cache = path.join(root, ".cache/tokenizers");
const out = path.join(root, ".cache/tokenizer-random");
const require = createRequire(import.meta.url);
const hf = require(path.join(cache, "hf-node/index.js"));
const version = JSON.parse(fs.readFileSync(path.join(cache, "hf-node/package.json"), "utf8")).version;
const count = Number(process.argv[2] ?? 5000);
let state = BigInt(process.argv[3] ?? 1);

const pool = ["a", "b", "e", "s", "t", "S", "T", "re", "RE", "ll", "d", "m", "ve", "x", "Hello",
  "world", " ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\n\n", "\u000b", "\u000c", "\u0085",
  "\u00a0", "\u3000", "\u2028", "\u180e", "\u200b", "\ufeff", "'", "\u2019", "\"", ".", ",", "!",
  "?", "-", "_", "(", ")", "$", "\u20ac", "\u00a9", "0", "1", "9", "12", "123", "4567", "\u00b2",
  "\u2460", "\u216b", "\u0663", "\u00e9", "e\u0301", "\u0301", "\u0323", "\u00df", "\u017f",
  "\u0130", "\u03a3", "\u03c2", "\u0416", "\u4e2d", "\u6587", "\u3042", "\u30a2", "\uff71",
  "\ud55c", "\u1100\u1161", "\u11a8", "\ufb01", "\u212b", "\u00c5", "\u{1F600}",
  "\u{1F44D}\u{1F3FD}", "\u{1F468}\u200d\u{1F469}\u200d\u{1F467}", "\u200d", "\ufe0f",
  "\u{1F1EF}\u{1F1F5}", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|begin_of_text|>",
  "<|eot_id|>", "<bos>", "<start_of_turn>", "<|im_start|", "[CLS]", "[MASK]", "<wick>", "<WICK>",
  "\u0000", "\u0001", "\u001f", "\u007f", "\ufffd", "\ue000", "\u0378", "\ufdd0", "<0x41>",
  "\u2581", "\u2581\u2581", "<unk>", "<pad>", "\u{10000}"];
function rnd(k) {
  state = (state * 6364136223846793005n + 1442695040888963407n) & ((1n << 64n) - 1n);
  return Number((state >> 33n) % BigInt(k));
}

fs.mkdirSync(out, { recursive: true });
const texts = [];
for (let i = 0; i < count; i++) {
  let t = "";
  const len = rnd(i % 50 === 0 ? 120 : 16);
  for (let k = 0; k < len; k++) t += pool[rnd(pool.length)];
  texts.push(t);
}
for (const name of ["qwen3", "llama3", "gemma3", "bert_tiny"]) {
  const dir = fs.existsSync(path.join(cache, name, "tokenizer.json"))
    ? path.join(cache, name)
    : path.join(root, "tests/fixtures/tokenizers", name);
  const tok = hf.Tokenizer.fromFile(path.join(dir, "tokenizer.json"));
  const cases = [];
  for (let i = 0; i < texts.length; i++) {
    const ids = Array.from((await tok.encode(texts[i], null, { addSpecialTokens: true })).getIds());
    const plain = Array.from((await tok.encode(texts[i], null, { addSpecialTokens: false })).getIds());
    cases.push({ name: `random-${i}`, text: texts[i], ids, ids_no_special: plain,
                 decoded: await tok.decode(ids, false), decoded_skip_special: await tok.decode(ids, true) });
  }
  const file = path.join(out, `${name}_expected.json`);
  fs.writeFileSync(file, JSON.stringify({ tokenizer: name, generator: `tokenizers ${version} (Node binding)`, cases }));
  console.log(`${file}: ${cases.length} cases`);
}
