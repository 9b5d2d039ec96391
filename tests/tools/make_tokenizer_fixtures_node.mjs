// Tokenizer fixtures from the Hugging Face `tokenizers` library itself, through its official
// Node binding (npm package `tokenizers`, a prebuilt native module of the Rust crate; fetch it
// with `bash scripts/fetch-tokenizers.sh hf-node`). Same output as make_tokenizer_fixtures.py
// (the Python binding of the same library), which needs the Python package instead.
//
//   bash scripts/fetch-tokenizers.sh && bash scripts/fetch-tokenizers.sh hf-node
//   node tests/tools/make_tokenizer_fixtures_node.mjs [qwen3 llama3 gemma3 bert_tiny]
//
// Writes tests/fixtures/tokenizers/<name>_expected.json.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const cache = path.join(root, ".cache/tokenizers");
const fixtures = path.join(root, "tests/fixtures/tokenizers");
const require = createRequire(import.meta.url);
const hf = require(path.join(cache, "hf-node/index.js"));
const version = JSON.parse(fs.readFileSync(path.join(cache, "hf-node/package.json"), "utf8")).version;

const names =
  process.argv.length > 2 ? process.argv.slice(2) : ["qwen3", "llama3", "gemma3", "bert_tiny"];
const dirOf = (name) =>
  fs.existsSync(path.join(cache, name, "tokenizer.json"))
    ? path.join(cache, name)
    : path.join(fixtures, name);
const texts = fs
  .readFileSync(path.join(fixtures, "texts.jsonl"), "utf8")
  .split("\n")
  .filter((l) => l.trim() !== "")
  .map((l) => JSON.parse(l));

for (const name of names) {
  const tok = hf.Tokenizer.fromFile(path.join(dirOf(name), "tokenizer.json"));
  const cases = [];
  for (const t of texts) {
    const ids = (await tok.encode(t.text, null, { addSpecialTokens: true })).getIds();
    const plain = (await tok.encode(t.text, null, { addSpecialTokens: false })).getIds();
    cases.push({
      name: t.name,
      text: t.text,
      ids: Array.from(ids),
      ids_no_special: Array.from(plain),
      decoded: await tok.decode(Array.from(ids), false),
      decoded_skip_special: await tok.decode(Array.from(ids), true),
    });
  }
  const out = { tokenizer: name, generator: `tokenizers ${version} (Node binding)`, cases };
  const file = path.join(fixtures, `${name}_expected.json`);
  fs.writeFileSync(file, JSON.stringify(out).replace(/\},\{"name"/g, '},\n{"name"') + "\n");
  console.log(`${file}: ${cases.length} cases (${out.generator})`);
}
