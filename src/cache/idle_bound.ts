// The optional idle bound of a cache connection (dc_server -idle; ./session arms it, whichever
// transport moves the bytes): progress in either direction re-arms it, and a
// connection silent both ways for `ms` gets onIdle. Unref'd: it never keeps the process alive.

/** Re-arms `timer` (or starts one) for `ms`; undefined when the bound is off (ms <= 0). */
export function armIdleBound(timer: NodeJS.Timeout | undefined, ms: number, onIdle: () => void): NodeJS.Timeout | undefined {
  if (ms <= 0) return undefined;
  if (timer !== undefined) return timer.refresh();
  const started = setTimeout(onIdle, ms);
  started.unref();
  return started;
}
