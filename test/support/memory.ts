// Memory figures for the leak and churn tests: a forced full GC (enabled at run time, so plain
// `node --test` works) and the heap plus off-heap bytes the engine can hold on to.

import v8 from 'node:v8';
import vm from 'node:vm';

let gc: (() => void) | undefined;

export function forceGc(): void {
  if (gc === undefined) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as () => void;
  }
  gc();
  gc();
}

/** Heap used + external + array buffers after a full GC, bytes. */
export function liveBytes(): number {
  forceGc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/** max - min of a series, in bytes, and the series in MB for messages. */
export function spread(samples: readonly number[]): { spread: number; text: string } {
  return {
    spread: Math.max(...samples) - Math.min(...samples),
    text: samples.map((s) => (s / 1048576).toFixed(1)).join(' '),
  };
}
