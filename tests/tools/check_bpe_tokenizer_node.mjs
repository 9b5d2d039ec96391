// The same fixture as check_bpe_tokenizer.py (tests/fixtures/tokenizers/wick-bpe/expected.json),
// from the Hugging Face `tokenizers` library's official Node binding (the Rust crate, prebuilt;
// fetch it with `bash scripts/fetch-tokenizers.sh hf-node`). The binding exposes no trainer
// settings: Tokenizer.train uses the model's default BpeTrainer, whose min_frequency is 0 and
// whose vocab_size (30000) is more than the committed corpus can fill, which are the settings
// the Python script asks for.
//
//   node tests/tools/check_bpe_tokenizer_node.mjs [path/to/tokenizer-folder]
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const cache = path.join(root, ".cache/tokenizers");
const fixtures = path.join(root, "tests/fixtures/tokenizers");
const require = createRequire(import.meta.url);
const hf = require(path.join(cache, "hf-node/index.js"));
const version = JSON.parse(fs.readFileSync(path.join(cache, "hf-node/package.json"), "utf8")).version;

const EXTRA = [
  ["chatml", "<|im_start|>user\nWho made the heaven?<|im_end|>\n<|im_start|>assistant\n"],
  ["specials_glued", "a<|endoftext|>b<|im_start|><|im_end|>c"],
  ["verse", "Ge1:1 In the beginning God created the heaven and the earth."],
  ["verse_unseen", "Re22:21 The grace of our Lord Jesus Christ be with you all. Amen."],
  ["digits", "Ge12:345 and 6789 years"],
  ["upper_contractions", "IT'S THE LORD'S, we'll see; they're here"],
  ["spaces_newlines", "  and  \n\n\tthe   earth \r\n"],
];

const folder = process.argv[2] ?? path.join(fixtures, "wick-bpe");
const tokPath = path.join(folder, "tokenizer.json");
const corpusPath = path.join(folder, "corpus.txt");
const texts = fs
  .readFileSync(path.join(fixtures, "texts.jsonl"), "utf8")
  .split("\n")
  .filter((l) => l.trim() !== "")
  .map((l) => JSON.parse(l))
  .concat(EXTRA.map(([name, text]) => ({ name, text })));

const tok = hf.Tokenizer.fromFile(tokPath);
const cases = [];
for (const t of texts) {
  const ids = (await tok.encode(t.text, null, { addSpecialTokens: false })).getIds();
  cases.push({
    name: t.name,
    text: t.text,
    ids,
    decoded: await tok.decode(ids, false),
    decoded_skip_special: await tok.decode(ids, true),
  });
}

// Trained on the corpus without its special tokens (see check_bpe_tokenizer.py).
const specials = JSON.parse(fs.readFileSync(tokPath, "utf8")).added_tokens.map((t) => t.content);
let corpus = fs.readFileSync(corpusPath, "utf8");
for (const s of specials) corpus = corpus.replaceAll(s, "");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "wick-bpe-"));
fs.writeFileSync(path.join(tmp, "corpus.txt"), corpus);
const trained = hf.Tokenizer.fromFile(tokPath);
await trained.train([path.join(tmp, "corpus.txt")]);
trained.save(path.join(tmp, "trained.json"));
let merges = JSON.parse(fs.readFileSync(path.join(tmp, "trained.json"), "utf8")).model.merges;
fs.rmSync(tmp, { recursive: true });
merges = merges.map((m) => (typeof m === "string" ? m.split(" ") : m));

const out = {
  tokenizer: path.relative(root, tokPath),
  generator: `tokenizers ${version} (node)`,
  cases,
  trainer_merges: merges,
};
// Python's json.dumps(ensure_ascii=True) escapes every non-ASCII character; do the same so
// that both scripts write the same bytes.
let text = JSON.stringify(out).replace(/[\u0080-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
text = text.replaceAll('},{"name"', '},\n{"name"').replaceAll('],["', '],\n["') + "\n";
const dest = path.join(folder, "expected.json");
fs.writeFileSync(dest + ".tmp", text);
fs.renameSync(dest + ".tmp", dest);
console.log(`${dest}: ${cases.length} cases, ${merges.length} trainer merges (${out.generator})`);
