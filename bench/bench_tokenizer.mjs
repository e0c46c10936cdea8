// bench_tokenizer.mjs - single-threaded throughput of the gpt-tokenizer npm
// package, the counterpart of bench_tokenizer.c.
//
//   node bench/bench_tokenizer.mjs --modules DIR [--encoding E] [--runs N]
//        [--warmup N] [--ids-out FILE] TEXT_FILE
//
// DIR is the node_modules directory gpt-tokenizer was installed into
// (bench_tokenizer.sh installs it in the build tree). The text is read and
// decoded from UTF-8 once, untimed; each timed run is one encode() of the
// whole string, with no special-token check (disallowedSpecial: empty), the
// same work as mg_tokenizer_encode and tiktoken's encode_ordinary. The merge
// cache of gpt-tokenizer stays on (its default) and warms up in the untimed
// runs. MB/s are 10^6 bytes of UTF-8 input per second, by the wall clock and
// by the process's CPU time (process.cpuUsage: all of Node's threads, so the
// garbage collector's helpers count too). Prints one JSON object; --ids-out
// writes the ids as little-endian uint32.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

function parseArgs(argv) {
  const opts = { encoding: 'o200k_base', runs: 10, warmup: 3, idsOut: null, modules: null, path: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--encoding') opts.encoding = argv[++i];
    else if (a === '--runs') opts.runs = Number(argv[++i]);
    else if (a === '--warmup') opts.warmup = Number(argv[++i]);
    else if (a === '--ids-out') opts.idsOut = argv[++i];
    else if (a === '--modules') opts.modules = argv[++i];
    else if (!a.startsWith('-') && opts.path === null) opts.path = a;
    else throw new Error(`bad argument ${a}`);
  }
  if (!opts.path || !opts.modules) throw new Error('usage: see the top of bench_tokenizer.mjs');
  return opts;
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const opts = parseArgs(process.argv.slice(2));
const require = createRequire(join(resolve(opts.modules), 'bench.cjs'));
const t0 = process.hrtime.bigint();
const tokenizer = require(`gpt-tokenizer/encoding/${opts.encoding}`);
const openMs = Number(process.hrtime.bigint() - t0) / 1e6;

const bytes = readFileSync(opts.path);
const text = bytes.toString('utf8');
const options = { disallowedSpecial: new Set() };
let ids = [];
for (let i = 0; i < opts.warmup; i++) ids = tokenizer.encode(text, options);
const runs = [];
const cpuRuns = [];
for (let i = 0; i < opts.runs; i++) {
  const start = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  ids = tokenizer.encode(text, options);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  runs.push(Number((bytes.length / seconds / 1e6).toFixed(2)));
  cpuRuns.push(Number((bytes.length / ((used.user + used.system) / 1e6) / 1e6).toFixed(2)));
}
if (opts.idsOut) {
  const out = Buffer.alloc(ids.length * 4);
  ids.forEach((id, i) => out.writeUInt32LE(id, i * 4));
  writeFileSync(opts.idsOut, out);
}
console.log(JSON.stringify({
  impl: 'gpt-tokenizer',
  version: require('gpt-tokenizer/package.json').version,
  node: process.version,
  encoding: opts.encoding,
  bytes: bytes.length,
  tokens: ids.length,
  encode_mbps: runs,
  encode_cpu_mbps: cpuRuns,
  encode_median_mbps: median(runs),
  open_ms: Number(openMs.toFixed(2)),
  max_rss_kb: process.resourceUsage().maxRSS,
}));
