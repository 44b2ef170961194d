import { randomUUID } from 'node:crypto';

interface Known { json: string; bytes?: Buffer }

const objects = new WeakMap<object, Known>();
/** The escaped form of big JSON texts registered below; only the latest few are kept. */
const texts = new Map<string, Known>();
const TEXTS_KEPT = 8;
const textLengths = new Set<number>();
const TEXT_MIN = 1024;
/** Unguessable, so no string a client or guest can write ever matches it. */
const PLACEHOLDER = `\u0000grove-known-json-${randomUUID()}\u0000`;
const PLACEHOLDER_JSON = JSON.stringify(PLACEHOLDER);

/**
 * Records the JSON of an object that will not change (the VM list the service hands out until a VM
 * changes, the tool result built around it), so answers that carry it splice the text in instead of
 * serializing 100 VMs twice per call: the same "JSON built once per change" the REST list route does.
 */
export function withKnownJson<T extends object>(value: T, json: string): T {
  objects.set(value, { json });
  if (json.length >= TEXT_MIN) {
    // The JSON itself travels too, as the tool result's text content (a JSON string inside JSON).
    texts.set(json, { json: JSON.stringify(json) });
    if (texts.size > TEXTS_KEPT) texts.delete(texts.keys().next().value!);
    textLengths.clear();
    for (const t of texts.keys()) textLengths.add(t.length);
  }
  return value;
}

function knownText(v: string): Known | undefined {
  // Comparing lengths first spares hashing a long string (console output) that cannot be one of them.
  return v.length >= TEXT_MIN && textLengths.has(v.length) ? texts.get(v) : undefined;
}

/**
 * Registered values sit near the top of a message (result.structuredContent.vms, result.content[0].text):
 * looking a few levels deep decides whether the replacer pass is needed, or V8's fast JSON.stringify will do.
 */
function containsKnown(v: unknown, depth: number): boolean {
  if (typeof v === 'string') return knownText(v) !== undefined;
  if (typeof v !== 'object' || v === null) return false;
  if (objects.has(v)) return true;
  if (depth === 0) return false;
  if (Array.isArray(v)) return v.some((x) => containsKnown(x, depth - 1));
  for (const k in v) if (containsKnown((v as Record<string, unknown>)[k], depth - 1)) return true;
  return false;
}
const PROBE_DEPTH = 4;

/** JSON.stringify, leaving a placeholder wherever a registered object or text is. */
function skeleton(value: unknown): { out: string; spliced: Known[] } {
  const spliced: Known[] = [];
  const out = JSON.stringify(value, (_key, v: unknown) => {
    let k: Known | undefined;
    if (typeof v === 'object' && v !== null) k = objects.get(v);
    else if (typeof v === 'string') k = knownText(v);
    if (k === undefined) return v;
    spliced.push(k);
    return PLACEHOLDER;
  });
  return { out, spliced };
}

/**
 * JSON.stringify as UTF-8 bytes for the wire, with everything registered by withKnownJson written from
 * its recorded JSON: the recorded parts are encoded once and copied, not re-encoded per answer (a 100-VM
 * list answer is ~120 KB).
 */
export function encodeWithKnownJson(value: unknown): Buffer {
  if (!containsKnown(value, PROBE_DEPTH)) return Buffer.from(JSON.stringify(value), 'utf8');
  const { out, spliced } = skeleton(value);
  if (spliced.length === 0) return Buffer.from(out, 'utf8');
  const parts = out.split(PLACEHOLDER_JSON);
  const chunks: Buffer[] = [];
  parts.forEach((p, i) => {
    if (p) chunks.push(Buffer.from(p, 'utf8'));
    const k = spliced[i];
    if (k) chunks.push(k.bytes ??= Buffer.from(k.json, 'utf8'));
  });
  return Buffer.concat(chunks);
}

/**
 * The JSON of an object handed out unchanged until it changes (the VM list, one VM's details), built on
 * first sight and recorded: both faces answer with it, so it is serialized once per state, not per face
 * or per answer.
 */
export function keptJson(value: object): string {
  const known = objects.get(value);
  if (known !== undefined) return known.json;
  const json = JSON.stringify(value);
  withKnownJson(value, json);
  return json;
}

/** The recorded JSON of `value` if it was registered with withKnownJson (it will not change, so what is built from it may be kept). */
export function knownJson(value: object): string | undefined {
  return objects.get(value)?.json;
}
