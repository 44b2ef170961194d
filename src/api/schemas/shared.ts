import { Problem } from './common.js';
import { EventEnvelope } from './events.js';
import { Snapshot } from './snapshot.js';
import { Vm } from './vm.js';
import { Distro, Download } from './downloads.js';

/** The schemas other schemas refer to by `$id`: registered once with the REST validator and OpenAPI, inlined for MCP. */
export const SHARED_SCHEMAS = [Problem, Vm, EventEnvelope, Snapshot, Distro, Download];
