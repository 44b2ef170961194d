/**
 * Everything a benchmark leaves behind (QEMU processes, temp dirs, servers) is registered here, so it is
 * undone when the benchmark ends, when it throws, and on Ctrl-C.
 */
type Undo = () => Promise<void> | void;

const stack: { what: string; undo: Undo }[] = [];

export function onCleanup(what: string, undo: Undo): () => Promise<void> {
  const entry = { what, undo };
  stack.push(entry);
  return async () => {
    const i = stack.indexOf(entry);
    if (i === -1) { await running; return; } // already undone, or being undone by cleanupAll()
    stack.splice(i, 1);
    await entry.undo();
  };
}

let running: Promise<void> | null = null;

/**
 * Undoes everything registered, newest first; failures are reported, never thrown. A call while a cleanup
 * is under way waits for that one (Ctrl-C can arrive while a benchmark is cleaning up after itself).
 */
export function cleanupAll(): Promise<void> {
  running ??= (async () => {
    while (stack.length > 0) {
      const { what, undo } = stack.pop()!;
      try {
        await undo();
      } catch (e) {
        process.stderr.write(`bench: cleanup of ${what} failed: ${(e as Error).message}\n`);
      }
    }
  })().finally(() => { running = null; });
  return running;
}

export let interrupted = false;

/** Cleans up, then exits with `code` (cleanupAll reports its own failures and never rejects). */
export function exitAfterCleanup(code: number): void {
  cleanupAll().then(() => process.exit(code), () => process.exit(code));
}

let installed = false;
export function installSignalCleanup(): void {
  if (installed) return;
  installed = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      interrupted = true;
      process.stderr.write(`\nbench: ${sig}, cleaning up\n`);
      exitAfterCleanup(130);
    });
  }
}
