// Benchmark ONNX Runtime (onnxruntime-node, CPU execution provider) the way
// `res2net bench` and scripts/bench_torch.py measure: a seeded random fp32
// batch of B x 3 x size x size, warm-up passes, then timed passes of the
// whole batch; per-image time is pass time / B.
//
// Usage:
//
//   node scripts/ort/bench_ort.js --model full.onnx [--batch-size 1] [--threads 2]
//       [--warmup 3] [--iters 20] [--size 224] [--format text|json] [--profile PREFIX]
//
// With --profile, ORT's own profiler records every node of every run into
// PREFIX_<date>.json (Chrome trace format), which scripts/layer_compare.py
// reads.
//
// The session runs with graph optimisation "all", intra-op threads =
// --threads, one inter-op thread, sequential execution. JSON keys match
// bench_torch.py: median_ms_per_image, p90_ms_per_image, images_per_second,
// batch_size, threads, warmup, iters, image_size, ort_version.
'use strict';

const ort = require('onnxruntime-node');

function parseArgs(argv) {
  const args = { model: '', batchSize: 1, threads: 2, warmup: 3, iters: 20, size: 224, format: 'text', profile: '' };
  const names = {
    '--model': ['model', String], '--batch-size': ['batchSize', Number], '--threads': ['threads', Number],
    '--warmup': ['warmup', Number], '--iters': ['iters', Number], '--size': ['size', Number],
    '--format': ['format', String], '--profile': ['profile', String],
  };
  for (let i = 0; i < argv.length; i += 2) {
    const spec = names[argv[i]];
    if (!spec || i + 1 >= argv.length) throw new Error(`unknown or incomplete flag ${argv[i]}`);
    args[spec[0]] = spec[1](argv[i + 1]);
  }
  if (!args.model) throw new Error('--model is required');
  for (const k of ['batchSize', 'threads', 'iters', 'size']) {
    if (!Number.isInteger(args[k]) || args[k] < 1) throw new Error(`--${k} must be an integer >= 1`);
  }
  if (!Number.isInteger(args.warmup) || args.warmup < 0) throw new Error('--warmup must be an integer >= 0');
  if (args.format !== 'text' && args.format !== 'json') throw new Error('--format is text or json');
  return args;
}

// randomInput fills n values with a seeded normal sample (xorshift32 and
// Box-Muller): the values only need to be image-like and the same every run.
function randomInput(n) {
  const data = new Float32Array(n);
  let s = 0x9e3779b9;
  const uniform = () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return (s + 1) / 4294967297;
  };
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform())), t = 2 * Math.PI * uniform();
    data[i] = r * Math.cos(t);
    if (i + 1 < n) data[i + 1] = r * Math.sin(t);
  }
  return data;
}

// quantile interpolates linearly between ranks, like numpy.percentile.
function quantile(sorted, q) {
  const pos = (sorted.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const session = await ort.InferenceSession.create(args.model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: args.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    enableProfiling: args.profile !== '',
    profileFilePrefix: args.profile || undefined,
  });
  const shape = [args.batchSize, 3, args.size, args.size];
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', randomInput(shape.reduce((a, b) => a * b)), shape) };
  const times = [];
  for (let i = 0; i < args.warmup + args.iters; i++) {
    const start = process.hrtime.bigint();
    await session.run(feeds);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (i >= args.warmup) times.push(ms / args.batchSize);
  }
  if (args.profile) await session.endProfiling();
  const sorted = [...times].sort((a, b) => a - b);
  const median = quantile(sorted, 0.5);
  const result = {
    median_ms_per_image: median,
    p90_ms_per_image: quantile(sorted, 0.9),
    images_per_second: 1000 / median,
    batch_size: args.batchSize,
    threads: args.threads,
    warmup: args.warmup,
    iters: args.iters,
    image_size: args.size,
    ort_version: ort.env.versions.common,
  };
  if (args.format === 'json') {
    console.log(JSON.stringify(result, null, 1));
  } else {
    console.log(`onnxruntime ${result.ort_version}: batch ${args.batchSize}, ${args.threads} threads, ` +
      `${args.iters} iters after ${args.warmup} warmup, ${args.size}x${args.size}`);
    console.log(`median ${median.toFixed(2)} ms/image, p90 ${result.p90_ms_per_image.toFixed(2)} ms/image, ` +
      `${result.images_per_second.toFixed(2)} images/s`);
  }
}

main().catch((err) => {
  console.error(`bench_ort: ${err.message}`);
  process.exit(1);
});
