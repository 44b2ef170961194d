/**
 * What "the guest is ready" can mean. `ssh`: its SSH server greets through the forwarded port. The guest
 * agent's check (`agent`) joins here when the agent client lands, and becomes the default then.
 */
export const READINESS_CHECKS = ['ssh'] as const;
export type ReadinessCheck = (typeof READINESS_CHECKS)[number];
