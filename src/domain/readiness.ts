/**
 * What "the guest is ready" can mean for launch's plain form. `ssh`: its SSH server greets through the
 * forwarded port. The agent and every other condition are `waitFor: { until }` (the wait service); SSH
 * stays the default because an image without the agent gets it only from cloud-init's packages step,
 * minutes after SSH answers.
 */
export const READINESS_CHECKS = ['ssh'] as const;
export type ReadinessCheck = (typeof READINESS_CHECKS)[number];
