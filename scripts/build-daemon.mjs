// Bundles the daemon (`grove serve`, from the compiled dist/src/cli/serve.js) into dist/daemon: one file
// plus the chunks loaded on first use (MCP, Prometheus). A daemon loading ~950 modules one by one holds
// each module's record, source and resolution in memory; the bundle measured 14 MiB less resident at idle
// (BENCHMARKS.md "Footprint"). bin/grove runs it when it is at least as new as dist/src.
//
// The modules keep their own places: `import.meta.url` in Grove's files and `__dirname`/`__filename` in
// CommonJS packages are rewritten to the file each came from (still in dist/src and node_modules), so
// paths they resolve relative to themselves (web assets, Redoc, the catalog, package.json) are unchanged.
import { build } from 'esbuild';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'daemon');
const posix = (p) => p.split(sep).join('/');

await build({
  entryPoints: [join(root, 'dist', 'src', 'cli', 'serve.js')],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  splitting: true,
  outdir: out,
  chunkNames: '[name]-[hash]',
  // Whitespace and syntax only: names stay readable in stack traces and logs.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
  // A native addon; and pino's transports run in worker threads that load their files by path.
  external: ['better-sqlite3', 'pino', 'pino-pretty', 'thread-stream'],
  banner: {
    js: "import { createRequire as __groveCreateRequire } from 'node:module'; import { fileURLToPath as __groveFileURLToPath } from 'node:url'; const require = __groveCreateRequire(import.meta.url); const __groveBundleDir = __groveFileURLToPath(new URL('.', import.meta.url));",
  },
  plugins: [{
    name: 'keep-module-locations',
    setup(b) {
      b.onLoad({ filter: /\.(c|m)?js$/ }, async (args) => {
        const text = await readFile(args.path, 'utf8');
        const rel = posix(relative(out, args.path));
        if (args.path.startsWith(join(root, 'dist', 'src') + sep)) {
          return text.includes('import.meta.url') ? { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`), loader: 'js' } : undefined;
        }
        if (!/\b__(dirname|filename)\b/.test(text)) return undefined;
        const prefix = `var __filename = require('node:path').join(__groveBundleDir, ${JSON.stringify(rel)}), __dirname = require('node:path').dirname(__filename);\n`;
        return { contents: prefix + text, loader: 'js' };
      });
    },
  }],
});
