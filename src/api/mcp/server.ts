import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv-provider.js';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { toProblem, type ProblemBody } from '../rest/problem.js';
import { toJsonSchema } from './json-schema.js';
import { encodeWithKnownJson, knownJson } from '../known-json.js';
import { ToolOutput, type ToolContext, type ToolDef } from './tools.js';

const SERVER_INFO = { name: 'grove', title: 'Grove VM manager' } as const;

const INSTRUCTIONS = 'Grove manages QEMU virtual machines on this host. Refer to a VM by its name or id (`vm`). ' +
  'Typical flow: create_vm → start_vm (optionally with waitFor) → wait_for_console / console_execute → stop_vm. ' +
  'A failed tool call returns isError with a JSON problem { code, detail, ... } in its text; codes are stable ' +
  '(VM_NOT_FOUND, INVALID_STATE, VALIDATION_FAILED, CONFLICT, OPERATION_IN_PROGRESS, TIMEOUT, QEMU_FAILED, ...). ' +
  'Inside a running guest with qemu-guest-agent: exec / ssh_execute, vm_ip, file_upload / file_download / file_list ' +
  '(GUEST_AGENT_UNAVAILABLE when no agent answers).';

interface Compiled {
  def: ToolDef;
  listed: Tool;
  /** Compiled on the tool's first call: a client uses a few of the ~60 tools. */
  validate: ValidateFunction | null;
}

/** What one call produced: the result, and what is already known of its JSON. */
type Outcome =
  /** A result with content of its own, or a tool error. */
  | { result: CallToolResult }
  /**
   * A structured output and its JSON, which is also the one text content (written once, sent twice); the
   * CallToolResult object is only built for the SDK path (the fast path writes the JSON directly). `head`,
   * for an output kept per state (the VM list until a VM changes): `{"result":…,"jsonrpc":"2.0","id":` as bytes.
   */
  | { structured: object; json: string; head?: Buffer };

/**
 * The body of one JSON-RPC response, in pieces written one after the other: a kept result's bytes go to
 * the socket as they are, never copied into a fresh buffer per answer (a 100-VM list answer is ~120 KB).
 */
export type ResponseChunks = readonly (string | Buffer)[];

/**
 * The MCP tool catalogue over the services: JSON Schemas are built and argument validators compiled once
 * (per daemon), so a per-request `Server` only binds two handlers to it.
 */
export class McpTools {
  private readonly byName = new Map<string, Compiled>();
  /** Outcomes built from outputs that do not change (the VM list until a VM changes), by output. */
  private readonly kept = new WeakMap<object, Outcome>();
  readonly list: Tool[];
  private readonly ajv: Ajv;

  /** `logBug` hears of failures that are not DomainErrors (they reach the client as INTERNAL only). */
  constructor(defs: ToolDef[], private readonly logBug: (err: unknown, tool: string) => void = () => undefined) {
    // Same rules as REST bodies: no type coercion, unknown arguments are an error, defaults filled in.
    const ajv = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
    addFormats.default(ajv);
    this.ajv = ajv;
    for (const def of defs) {
      const inputSchema = toJsonSchema(def.input) as Tool['inputSchema'];
      const outputSchema = toJsonSchema(def.output) as Tool['outputSchema'];
      if (outputSchema?.type !== 'object') throw new Error(`tool ${def.name}: MCP output schemas must be objects`);
      const listed: Tool = { name: def.name, description: def.description, inputSchema, outputSchema };
      this.byName.set(def.name, { def, listed, validate: null });
    }
    this.list = [...this.byName.values()].map((c) => c.listed);
  }

  /** A failing tool is a result with isError (the problem in its text), never a protocol error. */
  async call(name: string, args: Record<string, unknown> | undefined, ctx: ToolContext = {}): Promise<CallToolResult> {
    const o = await this.run(name, args, ctx);
    return 'result' in o ? o.result : structuredResult(o.structured, o.json);
  }

  /**
   * The JSON-RPC response to a `tools/call` with this id, byte for byte what the SDK's Server sends for it
   * (`result`, `jsonrpc`, `id`: the SDK's key order; the result in its schema's key order), or the error
   * response for an unknown tool. Synchronous when the tool is (reading state is): no promise per call.
   */
  respond(id: string | number, name: string, args: Record<string, unknown> | undefined, ctx: ToolContext = {}): ResponseChunks | Promise<ResponseChunks> {
    let outcome: Outcome | Promise<Outcome>;
    try {
      outcome = this.run(name, args, ctx);
    } catch (e) {
      return [rpcErrorResponse(id, e)];
    }
    return outcome instanceof Promise ? outcome.then((o) => encodeOutcome(id, o), (e: unknown) => [rpcErrorResponse(id, e)]) : encodeOutcome(id, outcome);
  }

  /** Throws McpError for an unknown tool (the client's protocol mistake, not a tool failure). */
  private run(name: string, args: Record<string, unknown> | undefined, ctx: ToolContext): Outcome | Promise<Outcome> {
    const c = this.byName.get(name);
    if (!c) throw new McpError(ErrorCode.InvalidParams, `unknown tool '${name}'`);
    // Validation fills in defaults: the arguments object is this call's own (parsed from the request).
    const input = args ?? {};
    const validate = c.validate ??= this.ajv.compile(c.listed.inputSchema);
    if (!validate(input)) {
      return { result: toolError(toProblem({ validation: validate.errors ?? [], validationContext: 'arguments' })) };
    }
    let out: object | Promise<object>;
    try {
      out = c.def.run(input, ctx);
    } catch (e) {
      return this.failed(e, name);
    }
    return out instanceof Promise ? out.then((o) => this.succeeded(o), (e: unknown) => this.failed(e, name)) : this.succeeded(out);
  }

  private succeeded(out: object): Outcome {
    const kept = this.kept.get(out);
    if (kept) return kept;
    if (out instanceof ToolOutput) {
      return { result: { content: [...out.content, { type: 'text', text: JSON.stringify(out.structured) }], structuredContent: out.structured as Record<string, unknown> } };
    }
    const known = knownJson(out);
    if (known === undefined) return { structured: out, json: JSON.stringify(out) };
    const head = Buffer.concat([Buffer.from('{"result":'), encodeWithKnownJson(structuredResult(out, known)), Buffer.from(RESPONSE_TAIL)]);
    const outcome: Outcome = { structured: out, json: known, head };
    this.kept.set(out, outcome);
    return outcome;
  }

  private failed(e: unknown, name: string): Outcome {
    const p = toProblem(e);
    if (p.code === 'INTERNAL') this.logBug(e, name);
    return { result: toolError(p) };
  }
}

const RESPONSE_TAIL = ',"jsonrpc":"2.0","id":';

/** The result the SDK's schema describes for a structured output, keys in its order. */
function structuredResult(structured: object, json: string): CallToolResult {
  return { content: [{ type: 'text', text: json }], structuredContent: structured as Record<string, unknown> };
}

function encodeOutcome(id: string | number, o: Outcome): ResponseChunks {
  const tail = `${JSON.stringify(id)}}`;
  if ('result' in o) return [`{"result":${JSON.stringify(o.result)}${RESPONSE_TAIL}${tail}`];
  if (o.head) return [o.head, tail];
  // The JSON built once for the text content is written again as structuredContent, not serialized twice.
  // One joined string: measured cheaper to write than its five pieces.
  return [`{"result":{"content":[{"type":"text","text":${JSON.stringify(o.json)}}],"structuredContent":${o.json}}${RESPONSE_TAIL}${tail}`];
}

/** The SDK's error response (its key order), for an unknown tool or a failure outside any tool. */
function rpcErrorResponse(id: string | number, e: unknown): string {
  const error = e instanceof McpError
    ? { code: e.code, message: e.message, ...(e.data !== undefined ? { data: e.data as unknown } : {}) }
    : { code: ErrorCode.InternalError, message: 'internal error' };
  return JSON.stringify({ jsonrpc: '2.0', id, error });
}

/**
 * The problem travels as JSON text, not as structuredContent: SDK clients check structuredContent against
 * the tool's outputSchema even on errors, and a problem is not a VM. Keys in the SDK schema's order.
 */
function toolError(p: ProblemBody): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(p) }], isError: true };
}

let validator: AjvJsonSchemaValidator | null = null;
/** The Server only needs it for elicitation (unused); building an Ajv per request would cost more than the call. */
function sharedValidator(): AjvJsonSchemaValidator {
  validator ??= new AjvJsonSchemaValidator();
  return validator;
}

/** A low-level SDK Server (it takes JSON Schemas as they are; McpServer wants zod) over the catalogue. */
export function createMcpServer(tools: McpTools, version: string): Server {
  const server = new Server({ ...SERVER_INFO, version }, { capabilities: { tools: {} }, instructions: INSTRUCTIONS, jsonSchemaValidator: sharedValidator() });
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: tools.list }));
  server.setRequestHandler(CallToolRequestSchema, (req) => tools.call(req.params.name, req.params.arguments));
  return server;
}
