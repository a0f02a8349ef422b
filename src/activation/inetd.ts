// The single connection of inetd nowait, systemd Accept=yes and distcc-over-ssh: a socket on an
// inherited fd (0 or 3), or two pipes (stdin, stdout). Its release makes sure the peer sees EOF:
// libuv never closes fds 0-2, so a socket gets a FIN through end() and the stdout pipe is closed
// by hand (reopened on /dev/null so fd 1 is never reused for something else).

import net from 'node:net';
import { Duplex } from 'node:stream';
import type { PeerAddress } from './connection';
import type { InheritedFd } from './mode';
import { peerOf } from './address';
import { releaseStream } from './serve';
import { reopenFd } from '../log/stdio';

export interface SingleConnection {
  readonly stream: Duplex;
  readonly peer: PeerAddress;
  /** Called once the handler is done: flush, send EOF, let go of the fds. */
  readonly release: (stream: Duplex) => void;
}

export function openSingleConnection(inherited: InheritedFd): SingleConnection {
  if (inherited.kind === 'pipe') return openPipes();
  const socket = new net.Socket({ fd: inherited.fd, readable: true, writable: true, allowHalfOpen: true });
  return { stream: socket, peer: peerOf(socket), release: releaseStream };
}

/** stdin/stdout as one Duplex (ssh gives the daemon two pipes, or a terminal when run by hand). */
function openPipes(): SingleConnection {
  const input = process.stdin;
  const output = process.stdout;
  let reading = false;
  const stream = new Duplex({
    allowHalfOpen: true,
    read() {
      if (!reading) {
        reading = true;
        input.on('data', (chunk: Buffer) => {
          if (!stream.push(chunk)) input.pause();
        });
        input.once('end', () => stream.push(null));
      }
      input.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      output.write(chunk, (error) => callback(error ?? null));
    },
    final(callback) {
      // Writes to pipes are synchronous on Linux, so once this empty write is acknowledged
      // everything before it is in the pipe and fd 1 can be closed: the peer reads EOF.
      output.write('', () => {
        reopenFd(1);
        callback();
      });
    },
    destroy(error, callback) {
      input.destroy();
      callback(error);
    },
  });
  input.on('error', (error) => stream.destroy(error));
  output.on('error', (error) => stream.destroy(error));
  return { stream, peer: { kind: 'pipe' }, release: releaseStream };
}
