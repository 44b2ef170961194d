import { Type, type Static } from '@sinclair/typebox';
import { FORK_LIMITS } from '../../app/fork/fork-service.js';
import { REIDENTIFY_ITEMS } from '../../app/fork/reidentify.js';
import { Vm, VmName } from './vm.js';

export const ForkBody = Type.Object({
  count: Type.Integer({ minimum: 1, maximum: FORK_LIMITS.maxCount, description: 'How many running copies' }),
  names: Type.Optional(Type.Array(VmName, { minItems: 1, maxItems: FORK_LIMITS.maxCount, description: 'Their names (as many as count); default `<parent>-fork-<n>`' })),
  keepParentPaused: Type.Optional(Type.Boolean({ default: false, description: 'Leave the parent paused after the capture (it is paused for the capture either way)' })),
  regenerateSshHostKeys: Type.Optional(Type.Boolean({ default: false, description: 'Also give each child new SSH host keys' })),
  agentTimeoutSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 600, default: FORK_LIMITS.defaultAgentTimeoutSeconds, description: 'How long each child\'s agent is waited for to re-identify it (0: answer once they run, not re-identified)' })),
}, { additionalProperties: false });
export type ForkBody = Static<typeof ForkBody>;

const Step = Type.Object({
  item: Type.Union(REIDENTIFY_ITEMS.map((i) => Type.Literal(i))),
  status: Type.Union([Type.Literal('ok'), Type.Literal('skipped'), Type.Literal('failed')]),
  detail: Type.String(),
});

export const ForkResult = Type.Object({
  parent: Type.Ref(Vm),
  children: Type.Array(Type.Object({
    vm: Type.Ref(Vm),
    mac: Type.String({ description: 'The child\'s own MAC address' }),
    reidentified: Type.Union([Type.Array(Step), Type.Null()], { description: 'What the guest changed to become a new machine, step by step' }),
    reidentifyError: Type.Union([Type.String(), Type.Null()]),
  })),
  stateBytes: Type.Integer({ description: 'Size of the one RAM + device state capture the children resumed from' }),
  durations: Type.Object({
    captureMs: Type.Integer({ description: 'Parent paused: disk split and state capture' }),
    startMs: Type.Integer({ description: 'All children resumed and running' }),
    reidentifyMs: Type.Integer({ description: 'Waiting for their agents and re-identifying them' }),
  }),
});
