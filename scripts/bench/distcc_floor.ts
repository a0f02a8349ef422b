// The yardstick for the distccd benchmark: the least a Node.js distcc server can do for a
// protocol-1 job, with the same parts ours uses and nothing else. It reads the request with our
// codec, writes DOTI to a temp file, rewrites the paths in argv, posix_spawns the compiler through
// src/native/spawn and lets the addon's exit handler send DONE STAT SERR SOUT DOTO, then removes
// the two files once the client hangs up. No access list, no compiler check, no job slots, no
// timeouts, no log, no stats: it runs whatever argv[0] a client names, so it listens on 127.0.0.1
// only and exists for `npm run bench`. Whatever ours costs beyond it is the daemon's own logic;
// whatever it costs beyond the C distccd is the price of a Node event loop per job.
// Run: node dist/scripts/bench/distcc_floor.js <port> <tmpdir>

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { rewriteArgs, scanArgs, tempExtensionFor } from '../../src/compile/args';
import { openCaptures } from '../../src/compile/compiler_process';
import { openRandom, writeAll } from '../../src/compile/temp_files';
import { RequestDecoder } from '../../src/compile/wire/request';
import * as native from 'distkit-spawn';
import { handleFd } from '../../src/activation/handle_fd';

const [portText = '0', tmp = '/tmp'] = process.argv.slice(2);
const env = Object.entries(process.env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));

function serve(socket: net.Socket): void {
  const decoder = new RequestDecoder();
  const onData = (chunk: Buffer): void => {
    const r = decoder.push(chunk);
    if (r.kind === 'incomplete') return;
    socket.off('data', onData);
    socket.on('data', () => undefined); // keep reading: the client's EOF ends the connection
    const fd = handleFd(socket);
    const scanned = r.kind === 'ok' && r.value.protocol === 1 ? scanArgs(r.value.argv) : undefined;
    if (r.kind !== 'ok' || scanned === undefined || !scanned.ok || fd === undefined) {
      socket.destroy(); // the yardstick serves protocol 1 only
      return;
    }
    const input = openRandom(tmp, tempExtensionFor(scanned.value.input));
    writeAll(input.fd, r.value.doti ?? Buffer.alloc(0));
    fs.closeSync(input.fd);
    const output = openRandom(tmp, '.o');
    fs.closeSync(output.fd);
    const captures = openCaptures(tmp);
    const argv = rewriteArgs(scanned.value, { input: input.file, output: output.file });
    socket.once('close', () => {
      fs.unlink(input.file, () => undefined);
      fs.unlink(output.file, () => undefined);
    });
    const pid = native.spawn(argv[0]!, argv, env, tmp, captures.stdout, captures.stderr);
    os.setPriority(pid, 5); // distccd's default --nice, as both real servers run their compilers
    const watched = native.watch(pid, (_status, sent = 0) => {
      captures.close();
      if (sent > 0) socket.end();
      else socket.destroy(); // the addon declined (a large capture): not the yardstick's case
    }, [fd, r.value.version, captures.stdout, captures.stderr, output.file]);
    // Ours falls back to SIGCHLD there; the yardstick stops rather than measure something else.
    if (!watched) throw new Error('the floor needs pidfd_open (Linux 5.3 or later)');
  };
  socket.on('data', onData);
  socket.on('error', () => socket.destroy());
}

const server = net.createServer(serve);
server.listen(Number(portText), '127.0.0.1', () => process.stdout.write(`listening ${(server.address() as net.AddressInfo).port}\n`));
process.on('SIGTERM', () => process.exit(0));
