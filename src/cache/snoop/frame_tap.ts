// dc_snoop's eyes: a copy of one direction's bytes goes in, one printable line per frame comes
// out. It never touches the bytes being relayed (the relay forwards the original chunks; this sees
// copies), so a decoding problem can only silence the tap, never alter or stop the traffic.
//
// Line format (one per frame, key=value like every distkit log line):
//   c2s uid=0x00000001 op=ADD frame=1 complete=1 len=29 timeout=300000 id_len=8 id=0102..08 data=68656c..(13)
//   s2c uid=0x00000001 op=ADD frame=1 complete=1 len=1 status=0x00(OK)

import { decodeFrame, type Frame } from '../wire/frame';
import { FRAME_HEADER_SIZE, MAX_FRAME_DATA, OPERATION_NAMES, Operation, Status, type Direction } from '../wire/constants';

/** How many payload bytes a line shows in hex before eliding the rest. */
export const PREVIEW_BYTES = 16;

const STATUS_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(Status).map(([name, value]) => [value, name]),
);

function preview(data: Uint8Array): string {
  const shown = Buffer.from(data.buffer, data.byteOffset, Math.min(data.length, PREVIEW_BYTES)).toString('hex');
  return data.length > PREVIEW_BYTES ? `${shown}..(${data.length})` : `${shown}(${data.length})`;
}

/** What the first frame's data says about the command: ADD's prefix, a lookup id, a status. */
function describePayload(frame: Frame, index: number, direction: Direction): string {
  const d = frame.data;
  if (index > 0) return `data=${preview(d)}`;
  if (direction === 'request') {
    if (frame.operation !== Operation.ADD) return `id=${preview(d)}`;
    if (d.length < 8) return `add_prefix=short data=${preview(d)}`;
    const timeout = d.readUInt32BE(0);
    const idLength = d.readUInt32BE(4);
    const idEnd = Math.min(d.length, 8 + idLength);
    return `timeout=${timeout} id_len=${idLength} id=${preview(d.subarray(8, idEnd))} data=${preview(d.subarray(idEnd))}`;
  }
  if (frame.complete && d.length === 1) return `status=0x${d[0]!.toString(16).padStart(2, '0')}(${STATUS_NAMES[d[0]!] ?? '?'})`;
  if (frame.complete && d.length === 0) return 'empty=1';
  return `data=${preview(d)}`;
}

/**
 * Decodes frames from copies of one direction's bytes. Holds at most one partial frame
 * (FRAME_HEADER_SIZE + MAX_FRAME_DATA bytes); after corrupt input it stays silent.
 */
export class FrameTap {
  readonly #direction: Direction;
  readonly #label: string;
  #pending: Buffer = Buffer.alloc(0);
  #index = 0;
  #uid = 0;
  #operation = 0;
  #broken = false;

  constructor(direction: Direction, label = direction === 'request' ? 'c2s' : 's2c') {
    this.#direction = direction;
    this.#label = label;
  }

  get broken(): boolean {
    return this.#broken;
  }

  /** Feeds a chunk (it is copied) and returns the lines of every frame it completed. */
  push(chunk: Uint8Array): string[] {
    if (this.#broken || chunk.length === 0) return [];
    const buf = Buffer.concat([this.#pending, chunk]);
    const lines: string[] = [];
    let at = 0;
    for (;;) {
      const r = decodeFrame(buf, this.#direction, {
        offset: at,
        context: { index: this.#index, uid: this.#uid, operation: this.#operation },
      });
      if (r.kind === 'incomplete') break;
      if (r.kind === 'corrupt') {
        this.#broken = true;
        lines.push(`${this.#label} corrupt at_byte=${r.offset - at} reason=${JSON.stringify(r.reason)} (decoding stops; bytes still relayed)`);
        this.#pending = Buffer.alloc(0);
        return lines;
      }
      const f = r.value;
      if (this.#index === 0) {
        this.#uid = f.uid;
        this.#operation = f.operation;
      }
      const op = OPERATION_NAMES[f.operation] ?? String(f.operation);
      const uid = `0x${f.uid.toString(16).padStart(8, '0')}`;
      lines.push(
        `${this.#label} uid=${uid} op=${op} frame=${this.#index + 1} complete=${f.complete ? 1 : 0} len=${f.data.length} ${describePayload(f, this.#index, this.#direction)}`,
      );
      this.#index = f.complete ? 0 : this.#index + 1;
      at = r.next;
    }
    // Only a partial frame remains: bounded by one frame.
    this.#pending = Buffer.from(buf.subarray(at));
    if (this.#pending.length > FRAME_HEADER_SIZE + MAX_FRAME_DATA) throw new Error('FrameTap holds more than one frame');
    return lines;
  }
}
