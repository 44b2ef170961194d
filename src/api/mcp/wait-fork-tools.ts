import { Type } from '@sinclair/typebox';
import { VmRefParams } from '../schemas/common.js';
import { ForkBody, ForkResult } from '../schemas/fork.js';
import { WaitBody, WaitResult } from '../schemas/wait.js';
import type { ApiServices } from '../rest/context.js';
import type { ToolDef } from './tools.js';

const WaitUntilInput = Type.Object({ vm: VmRefParams.properties.id, ...WaitBody.properties }, { additionalProperties: false });
const ForkInput = Type.Object({ vm: VmRefParams.properties.id, ...ForkBody.properties }, { additionalProperties: false });

/** The server-side wait and live fork, as MCP tools (thin faces over the wait and fork services). */
export function waitForkTools(s: ApiServices): ToolDef[] {
  return [
    {
      name: 'wait_until',
      description: 'Wait on the server until a VM is ready in the sense you need, instead of polling: `until` is a list of conditions, `mode` any (default: the first one met) or all. '
        + 'Conditions: { console: "text or /regex/", since? }, { agent: true }, { ip: true }, { port: 22 } (a TCP socket listening in the guest), { file: "/path" }, { command: "shell line" } (exits 0; re-run with back-off), '
        + '{ state: "running" }, { event: "agent.connected" }. Returns { mode, elapsedMs, matched: [{ index, kind, condition, at, elapsedMs, evidence }] }. '
        + 'TIMEOUT after `timeoutSeconds` (default 60: keep it below your MCP client\'s request timeout, and call again if needed) naming what is pending; INVALID_STATE at once if the VM stops or fails meanwhile.',
      input: WaitUntilInput, output: WaitResult,
      run: (args) => {
        const { vm, ...req } = args as { vm: string } & WaitBody;
        return s.wait.wait(vm, req);
      },
    },
    {
      name: 'fork_vm',
      description: 'Fork a running (or paused) VM into `count` new running VMs that continue from its exact memory, CPU and disk state (e.g. try N approaches from one prepared state without booting). '
        + 'The parent is paused briefly for one capture and then runs on (or stays paused with keepParentPaused). Each child gets its own MAC, host port forwards, hostname (its VM name) and machine-id once its agent answers. '
        + '`names` optional (default <parent>-fork-<n>). Returns { parent, children: [{ vm, mac, reidentified, reidentifyError }], stateBytes, durations }.',
      input: ForkInput, output: ForkResult,
      run: (args) => {
        const { vm, ...req } = args as { vm: string } & ForkBody;
        return s.forks.fork(vm, req);
      },
    },
  ];
}
