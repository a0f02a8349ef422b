// What the socket pump tests attach to a pumped socket: its events as strings, its bytes gathered.

import type { PumpHandler } from '../../src/activation/socket_pump';

/** Events of one pumped socket, as strings, with the data gathered. */
export class Recorder implements PumpHandler {
  readonly events: string[] = [];
  data = Buffer.alloc(0);
  #waiters: Array<() => void> = [];
  onData(arena: Buffer, start: number, end: number): void {
    this.data = Buffer.concat([this.data, arena.subarray(start, end)]);
    this.#note('data');
  }
  onEnd(): void {
    this.#note('end');
  }
  onDrain(): void {
    this.#note('drain');
  }
  onError(code: string): void {
    this.#note(`error ${code}`);
  }
  onClosed(): void {
    this.#note('closed');
  }
  onGone(): void {
    this.#note('gone');
  }
  #note(event: string): void {
    if (this.events.at(-1) !== event || event !== 'data') this.events.push(event);
    for (const wake of this.#waiters.splice(0)) wake();
  }
  async until(check: () => boolean): Promise<void> {
    while (!check()) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }
}
