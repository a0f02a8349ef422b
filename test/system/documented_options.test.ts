// Every option a program's --help lists is in its man page (src/man/<program>.1), and every
// option the README names is one some program's --help lists: the operator reads one of the
// three, and none may promise what another does not have. The options come from the built
// programs themselves, so a new option without its man page entry fails here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '../../..');
const CLI = path.join(root, 'dist/src/cli');
const PROGRAMS = ['distccd', 'dc_server', 'dc_client', 'dc_snoop'] as const;

/**
 * Options the README quotes that belong to other commands: scripts/install and distcc's
 * ./configure (--prefix, --without-*, --disable-*), node (--snapshot-blob), `npm run bench`
 * (--runs, --only, --compare, --sandbox-row, --quick, --ms, --only-redis, --no-redis, --rounds, --files, --sessions, --size,
 * --hits), systemctl (--now), gcc (--sysroot, in the refused-option list).
 */
const FOREIGN = new Set(['--sysroot', '--prefix', '--without-libiberty', '--disable-Werror', '--without-avahi', '--without-gtk', '--snapshot-blob', '--runs', '--only', '--compare', '--sandbox-row', '--quick', '--ms', '--only-redis', '--no-redis', '--rounds', '--files', '--sessions', '--size', '--hits', '--now']);
// The sandbox host program's modes (src/native/spawn/sandbox_host.c): distccd runs it, no one else.
for (const mode of ['--job', '--own-namespaces']) FOREIGN.add(mode);

/** The --help text of a built program (dc_* print theirs for -h, on stderr as the originals did). */
function helpOf(program: string): string {
  const r = spawnSync(process.execPath, [path.join(CLI, `${program}.js`), program === 'distccd' ? '--help' : '-h'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${program} --help exited ${r.status}: ${r.stderr}`);
  return r.stdout + r.stderr;
}

/**
 * The options of a help text: the words that open its option lines ("  -p, --port PORT ...",
 * "    --jobs, -j LIMIT ...", "  -listen <addr> (...)"), and the three spellings of "-<h|help|?>".
 */
function optionsOfHelp(help: string): string[] {
  const found = new Set<string>();
  for (const line of help.split('\n')) {
    const alternatives = /^\s+-<([^>]+)>/.exec(line);
    if (alternatives) {
      for (const word of alternatives[1]!.split('|')) found.add(`-${word}`);
      continue;
    }
    const lead = /^\s+(-{1,2}[A-Za-z][\w-]*(?:=\w+)?(?:,\s*-{1,2}[A-Za-z][\w-]*)*)/.exec(line);
    if (!lead) continue;
    for (const option of lead[1]!.split(/,\s*/)) found.add(option.replace(/=.*/, ''));
  }
  return [...found].sort();
}

/** A man page as plain text: roff's escapes and font changes gone, macros kept as words. */
function manText(program: string): string {
  const roff = fs.readFileSync(path.join(root, 'src/man', `${program}.1`), 'utf8');
  return roff.replace(/\\f[BIRP]/g, '').replace(/\\-/g, '-').replace(/\\&/g, '').replace(/"/g, ' ');
}

/** Whether `option` stands as a word of `text` (not as the start of a longer option). */
function mentions(text: string, option: string): boolean {
  const escaped = option.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^\\w-])${escaped}(?![\\w-])`, 'm').test(text);
}

test('optionsOfHelp finds short, long, paired and alternative spellings when reading help lines', () => {
  const help = 'Options:\n    -P, --pid-file FILE   save\n    --jobs, -j LIMIT  max\n    --log-level=LEVEL  set\n' +
    '  -listen <addr>     (where)\n  -<h|help|?>        (print)\n Addresses: IP:port\n';
  assert.deepEqual(optionsOfHelp(help), ['--jobs', '--log-level', '--pid-file', '-?', '-P', '-h', '-help', '-j', '-listen']);
});

for (const program of PROGRAMS) {
  test(`${program}'s man page names every option its --help lists when both come from this build`, () => {
    const options = optionsOfHelp(helpOf(program));
    assert.ok(options.length >= 4, `too few options parsed from ${program} --help: ${options.join(' ')}`);
    const page = manText(program);
    const missing = options.filter((o) => !mentions(page, o));
    assert.deepEqual(missing, [], `src/man/${program}.1 misses ${missing.join(' ')}`);
  });
}

test('the README names only options some program lists in --help when quoting them in code', () => {
  const known = new Set(PROGRAMS.flatMap((p) => optionsOfHelp(helpOf(p))));
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8').replace(/^```[\s\S]*?^```$/gm, '');
  const spans = [...readme.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
  // Long options anywhere; the single-dash words only where the distcache programs are described
  // (elsewhere they are compiler flags such as -MT).
  const cacheSection = /^## dc_server[\s\S]*?(?=^## )/m.exec(readme)?.[0] ?? '';
  const cacheSpans = [...cacheSection.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
  const named = new Set<string>();
  for (const span of spans) for (const m of span.matchAll(/(?<![\w-])--[A-Za-z][\w-]*/g)) named.add(m[0]);
  for (const span of cacheSpans) for (const m of span.matchAll(/(?<![\w-])-[A-Za-z][\w-]*/g)) named.add(m[0]);
  const unknown = [...named].filter((o) => !known.has(o) && !FOREIGN.has(o)).sort();
  assert.deepEqual(unknown, [], `README.md names options no program has: ${unknown.join(' ')}`);
});
