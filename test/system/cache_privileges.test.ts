// Security of the cache programs' daemon options, read from the kernel rather than from our logs:
// - -user: uid, gid AND supplementary groups of the running process (/proc/PID/status Uid, Gid,
//   Groups). The C programs only called setuid(), keeping gid 0 and root's groups. The target
//   user gets a supplementary group from a private copy of /etc/group bind-mounted in a private
//   mount namespace (unshare), so the host's files are never touched;
// - -sockowner/-sockgroup/-sockperms: owner, group and mode of the UNIX: socket file, and who
//   can connect to it (processes run as other uids, spawned with uid/gid).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startServerProgram, DC_SERVER } from '../fuzz/server_program';
import { tempDir, type AfterHook } from '../support/temp_dir';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli');
const NOBODY = 65534;
const NOGROUP = 65534;
const TEST_GID = 4242;

const PROGRAMS = [
  { name: 'dc_server', script: DC_SERVER, args: (listen: string) => ['-listen', listen] },
  { name: 'dc_client', script: path.join(CLI, 'dc_client.js'), args: (listen: string) => ['-listen', listen, '-server', 'IP:127.0.0.1:9'] },
];

function status(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const m = /^(\w+):\s*(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!.trim();
  }
  return out;
}

/** Tries to connect to a unix socket as another user; resolves 'ok' or the error code. */
function connectAs(uid: number, gid: number, socket: string): Promise<string> {
  const code = `const s=require('net').connect(${JSON.stringify(socket)});s.on('connect',()=>{console.log('ok');s.destroy()});s.on('error',e=>console.log(e.code))`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', code], { uid, gid, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', () => resolve(out.trim()));
  });
}

/** Others must reach the socket for the access checks to mean anything. */
function openDir(t: AfterHook): string {
  return tempDir(t, 'distkit-cache-sec-', { mode: 0o755 });
}

for (const program of PROGRAMS) {
  const built = fs.existsSync(program.script);
  test(`${program.name} runs with the uid, gid and supplementary groups of -user when started as root`, { skip: built ? false : `${program.script} not built on this branch` }, async (t) => {
    const dir = openDir(t);
    const groupFile = path.join(dir, 'group');
    fs.writeFileSync(groupFile, `${fs.readFileSync('/etc/group', 'utf8').trimEnd()}\ndistkittest:x:${TEST_GID}:nobody\n`);
    const wrapper = ['unshare', '--mount', '--', 'sh', '-c', `mount --bind ${groupFile} /etc/group && exec "$@"`, 'sh'];
    const p = await startServerProgram([...program.args(`UNIX:${path.join(dir, 'sock')}`), '-user', 'nobody'], { script: program.script, wrapper });
    t.after(() => p.stop());
    const s = status(p.pid);
    assert.equal(s.Name, 'node', 'the PID read is the program itself');
    assert.deepEqual(s.Uid!.split(/\s+/).map(Number), [NOBODY, NOBODY, NOBODY, NOBODY], `Uid: ${s.Uid}`);
    assert.deepEqual(s.Gid!.split(/\s+/).map(Number), [NOGROUP, NOGROUP, NOGROUP, NOGROUP], `Gid: ${s.Gid}`);
    assert.deepEqual(s.Groups!.split(/\s+/).map(Number).sort((a, b) => a - b), [TEST_GID, NOGROUP], `Groups: ${s.Groups}`);
    // Still serving after the drop.
    assert.equal(await connectAs(0, 0, path.join(dir, 'sock')), 'ok');
  });

  test(`${program.name} drains and exits 0 on SIGTERM when, after -user, it may not remove its UNIX: socket`, { skip: built ? false : `${program.script} not built on this branch` }, async (t) => {
    // The classic set-up: root binds the socket in a directory of root's (/tmp's sticky bit does
    // the same), then drops to nobody, who may not unlink it at the stop.
    const dir = openDir(t);
    const sock = path.join(dir, 'sock');
    const p = await startServerProgram([...program.args(`UNIX:${sock}`), '-user', 'nobody'], { script: program.script });
    t.after(() => p.stop());
    assert.deepEqual(await p.stop(), { code: 0, signal: null }, p.lines.join('\n'));
    assert.ok(p.lines.some((l) => / notice: stopped$/.test(l)), p.lines.join('\n'));
  });

  test(`${program.name} gives its UNIX: socket the -sockowner, -sockgroup and -sockperms asked for`, { skip: built ? false : `${program.script} not built on this branch` }, async (t) => {
    const dir = openDir(t);
    const sock = path.join(dir, 'sock');
    const p = await startServerProgram([...program.args(`UNIX:${sock}`), '-sockowner', 'nobody', '-sockgroup', 'nogroup', '-sockperms', '660'], { script: program.script });
    t.after(() => p.stop());
    const st = fs.statSync(sock);
    assert.ok(st.isSocket());
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [NOBODY, NOGROUP, 0o660]);
    assert.equal(await connectAs(NOBODY, NOBODY, sock), 'ok', 'the socket owner cannot connect');
    assert.equal(await connectAs(1, NOBODY, sock), 'ok', 'a member of the socket group cannot connect');
    assert.equal(await connectAs(1, 1, sock), 'EACCES', 'a stranger can connect');
  });

  test(`${program.name} keeps other users off a UNIX: socket with -sockperms 600`, { skip: built ? false : `${program.script} not built on this branch` }, async (t) => {
    const dir = openDir(t);
    const sock = path.join(dir, 'sock');
    const p = await startServerProgram([...program.args(`UNIX:${sock}`), '-sockperms', '600'], { script: program.script });
    t.after(() => p.stop());
    assert.equal(fs.statSync(sock).mode & 0o7777, 0o600);
    assert.equal(await connectAs(0, 0, sock), 'ok');
    assert.equal(await connectAs(NOBODY, NOGROUP, sock), 'EACCES');
  });
}
