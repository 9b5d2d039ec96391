// Second-opinion tokenizer fixtures from @lenml/tokenizers (an independent JavaScript
// implementation, a fork of transformers.js), for use until make_tokenizer_fixtures.py has been
// run with the real Hugging Face `tokenizers` library. Same output format as that script, with
// "generator" naming the JS library so that the tests know which reference they compare with.
//
//   bash scripts/fetch-tokenizers.sh
//   node tests/tools/make_tokenizer_fixtures_js.mjs [qwen3 llama3 gemma3 bert_tiny]
//
// Writes tests/fixtures/tokenizers/<name>_expected.json.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const cache = path.join(root, ".cache/tokenizers");
const fixtures = path.join(root, "tests/fixtures/tokenizers");
const lib = await import(pathToFileURL(path.join(cache, "lenml-tokenizers/main.mjs")).href);

const names =
  process.argv.length > 2 ? process.argv.slice(2) : ["qwen3", "llama3", "gemma3", "bert_tiny"];
// Fetched real tokenizers, or the small hand-made ones committed with the fixtures.
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
  const dir = dirOf(name);
  const tok = lib.TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")),
    tokenizerConfig: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")),
  });
  // The `tokenizers` library's decode never cleans up spaces (that is a transformers option).
  const dec = (ids, skip) =>
    ids.length === 0
      ? ""
      : tok.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false });
  const cases = texts.map((t) => {
    const ids = Array.from(tok.encode(t.text, { add_special_tokens: true }));
    const ids_plain = Array.from(tok.encode(t.text, { add_special_tokens: false }));
    return {
      name: t.name,
      text: t.text,
      ids,
      ids_no_special: ids_plain,
      decoded: dec(ids, false),
      decoded_skip_special: dec(ids, true),
    };
  });
  const out = { tokenizer: name, generator: "@lenml/tokenizers 3.7.2", cases };
  const file = path.join(fixtures, `${name}_expected.json`);
  fs.writeFileSync(file, JSON.stringify(out, null, 0).replace(/\},\{"name"/g, '},\n{"name"') + "\n");
  console.log(`${file}: ${cases.length} cases`);
}
