/**
 * Stands in for `grove mcp` in tests: runs the stdio bridge against GROVE_URL with GROVE_TOKEN, as the CLI
 * does once it has resolved them.
 */
import { runStdioBridge } from '../../src/api/mcp/stdio-bridge.js';

const url = process.env['GROVE_URL'];
const token = process.env['GROVE_TOKEN'];
if (!url || !token) {
  process.stderr.write('GROVE_URL and GROVE_TOKEN are required\n');
  process.exit(2);
}
runStdioBridge({ url, token }).then(
  () => process.exit(0),
  (e: Error) => { process.stderr.write(`${e.message}\n`); process.exit(1); },
);
