// Waiting for a state that sends no event (a file appears, a process is gone, a socket's queue
// fills): the probe is checked every 20 ms until it answers or the deadline passes. Output of a
// program the test started is waited for through Daemon instead, woken by each chunk.

/** Polls `probe` every 20 ms until it returns a value, failing after `ms`. */
export async function waitUntil<T>(probe: () => T | undefined, ms: number, what: () => string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
