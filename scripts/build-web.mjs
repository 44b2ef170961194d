// Bundles the web UI (src/web) into dist/web: index.html plus content-hashed files under assets/.
// Everything comes from npm packages; nothing is fetched at run time (no CDN).
import { build } from 'esbuild';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'web');
mkdirSync(join(out, 'assets'), { recursive: true });

const result = await build({
  entryPoints: [join(root, 'src', 'web', 'main.ts')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: 'linked',
  outdir: join(out, 'assets'),
  entryNames: 'app-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
  legalComments: 'linked',
  // The shared API client sends over node:http; in the browser the same module over fetch.
  plugins: [{
    name: 'browser-http',
    setup(b) {
      b.onResolve({ filter: /^\.\/http\.js$/ }, (args) => (args.importer.endsWith(join('src', 'client', 'client.ts'))
        ? { path: join(root, 'src', 'client', 'http-browser.ts') } : undefined));
    },
  }],
});

const outputs = Object.keys(result.metafile.outputs).map((f) => basename(f));
const js = outputs.find((f) => f.endsWith('.js'));
const css = outputs.find((f) => f.endsWith('.css'));
const html = readFileSync(join(root, 'src', 'web', 'index.html'), 'utf8')
  .replace('%SCRIPT%', `/assets/${js}`)
  .replace('%STYLE%', `/assets/${css}`);
writeFileSync(join(out, 'index.html'), html);
