import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv-provider.js';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { toProblem, type ProblemBody } from '../rest/problem.js';
import { toJsonSchema } from './json-schema.js';
import { encodeWithKnownJson, isKnownJson, stringifyWithKnownJson } from './known-json.js';
import { ToolOutput, type ToolContext, type ToolDef } from './tools.js';

const CLOSE = Buffer.from('}');

function isKeptResult(results: WeakMap<object, CallToolResult>, result: CallToolResult): boolean {
  const out = result.structuredContent;
  return out !== undefined && results.get(out) === result;
}

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

/**
 * The MCP tool catalogue over the services: JSON Schemas are built and argument validators compiled once
 * (per daemon), so a per-request `Server` only binds two handlers to it.
 */
export class McpTools {
  private readonly byName = new Map<string, Compiled>();
  /** Results built from outputs that do not change (the VM list until a VM changes), and their JSON bytes. */
  private readonly results = new WeakMap<object, CallToolResult>();
  private readonly encoded = new WeakMap<CallToolResult, Buffer>();
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

  /**
   * A JSON-RPC response carrying `result`, as bytes. A result kept by call() (built from an output that
   * does not change) is encoded once; each answer then only puts its own id around those bytes.
   */
  encodeResponse(id: string | number, result: CallToolResult): Buffer {
    let bytes = this.encoded.get(result);
    if (!bytes && isKeptResult(this.results, result)) {
      bytes = encodeWithKnownJson(result);
      this.encoded.set(result, bytes);
    }
    if (!bytes) {
      const only = result.content.length === 1 ? result.content[0] : undefined;
      // call() makes the text the JSON of structuredContent: that JSON is written twice, built once.
      if (only?.type === 'text' && result.structuredContent !== undefined && result.isError === undefined) {
        return Buffer.from(`{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":{"content":[{"type":"text","text":${JSON.stringify(only.text)}}],"structuredContent":${only.text}}}`, 'utf8');
      }
      return encodeWithKnownJson({ jsonrpc: '2.0', id, result });
    }
    return Buffer.concat([Buffer.from(`{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":`), bytes, CLOSE]);
  }

  /** A failing tool is a result with isError (the problem in its text), never a protocol error. */
  async call(name: string, args: Record<string, unknown> | undefined, ctx: ToolContext = {}): Promise<CallToolResult> {
    const c = this.byName.get(name);
    // An unknown tool is the client's protocol mistake, not a tool failure.
    if (!c) throw new McpError(ErrorCode.InvalidParams, `unknown tool '${name}'`);
    // Validation fills in defaults: the arguments object is this call's own (parsed from the request).
    const input = args ?? {};
    const validate = c.validate ??= this.ajv.compile(c.listed.inputSchema);
    if (!validate(input)) {
      return toolError(toProblem({ validation: validate.errors ?? [], validationContext: 'arguments' }));
    }
    try {
      const out = await c.def.run(input, ctx);
      const kept = this.results.get(out);
      if (kept) return kept;
      if (out instanceof ToolOutput) {
        return { content: [...out.content, { type: 'text', text: JSON.stringify(out.structured) }], structuredContent: out.structured as Record<string, unknown> };
      }
      const result: CallToolResult = { content: [{ type: 'text', text: stringifyWithKnownJson(out) }], structuredContent: out as Record<string, unknown> };
      if (isKnownJson(out)) this.results.set(out, result);
      return result;
    } catch (e) {
      const p = toProblem(e);
      if (p.code === 'INTERNAL') this.logBug(e, name);
      return toolError(p);
    }
  }
}

/**
 * The problem travels as JSON text, not as structuredContent: SDK clients check structuredContent against
 * the tool's outputSchema even on errors, and a problem is not a VM.
 */
function toolError(p: ProblemBody): CallToolResult {
  return { isError: true, content: [{ type: 'text', text: JSON.stringify(p) }] };
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
