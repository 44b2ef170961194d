/**
 * The test mirror (test/helpers/image-server.ts) in a process of its own, so serving a large file does not
 * share an event loop with the in-process daemon that downloads it. Argument: JSON
 * `{ "files": { "/path": "/file/on/disk" }, "texts": { "/path": "body" } }`. Prints `{"port":N}` once
 * listening; exits when stdin closes (the parent ended) or on SIGTERM.
 */
import { startImageServer } from '../../test/helpers/image-server.js';

const cfg = JSON.parse(process.argv[2] ?? '{}') as { files?: Record<string, string>; texts?: Record<string, string> };
const srv = await startImageServer();
for (const [path, file] of Object.entries(cfg.files ?? {})) srv.file(path, file);
for (const [path, text] of Object.entries(cfg.texts ?? {})) srv.text(path, text);
process.stdout.write(`${JSON.stringify({ port: srv.port })}\n`);
const stop = (): void => {
  srv.close().then(() => process.exit(0), (e: unknown) => { process.stderr.write(`image server: close failed: ${String(e)}\n`); process.exit(1); });
};
process.stdin.on('end', stop);
process.stdin.resume();
process.once('SIGTERM', stop);
