// The argv of a protocol-3 (pump) job, re-rooted into the job's private tree (distcc src/serve.c:
// tweak_arguments_for_server and friends). The compiler preprocesses on the server, so every
// absolute path the client named must point into <root> instead of the server's own files:
//   1. the output (-o x, -ox, bare x.o, or the implied one) becomes a temp .o OUTSIDE the tree,
//      so nothing the client sent can stand in its way;
//   2. a lone separate `-MT target` is remembered and dropped, and depfile.ts puts the target in
//      the .d file afterwards (see replacedTarget: it is usually the one the client appended);
//   3. -MMD is appended unless -MD or -MMD is present, then `-MF <deps>`;
//   4. the root is prefixed to absolute arguments of -I -include -imacros -idirafter -iprefix
//      -iwithprefix -iwithprefixbefore -isystem -iquote -isysroot (joined or separate) and
//      --sysroot (=DIR or separate) and to an absolute input file; in a sandbox, which shows the
//      tree at the client's own paths (sandbox/tree_mounts.ts), nothing is re-rooted (root null).
// Unlike the C server, the longest option name wins (-iwithprefixbefore is not read as
// -iwithprefix with a path "before/...").
//
// Exports: rerootArgs(scanned, { root, output, deps }) -> { argv, mtTarget }

import type { ScannedArgs } from '../args';

/** distcc's include_options, longest first so a prefix never shadows a longer name. */
export const INCLUDE_OPTIONS: readonly string[] = [
  '-iwithprefixbefore', '-iwithprefix', '-idirafter', '-isysroot', '-imacros', '-include', '-isystem', '-iprefix', '-iquote', '--sysroot=', '--sysroot', '-I',
];

export interface RerootedArgs {
  readonly argv: string[];
  /** The target of the lone separate -MT, removed from argv; the .d file's target is set to it afterwards. */
  readonly mtTarget: string | undefined;
}

/** "<root>/path" for an absolute path; "/" runs at the start collapse, as distccd does. */
function underRoot(root: string, abs: string): string {
  return `${root}/${abs.replace(/^\/+/, '')}`;
}

/**
 * The index of the `-MT target` pair to take out of the compiler's argv, if any. gcc writes every
 * -MT and -MQ target it is given, and the distcc client appends `-MT <its output>` whenever the
 * user set no target with a separate -MT or -MQ (distcc src/compile.c after dcc_get_dotd_info; a
 * joined -MTx or -MQx does not count), so that one must go: left in, the .d file would name the
 * output next to the user's -MTx. Without a joined target, a lone separate -MT is either that one
 * or the user's only target, and taking it out then substituting it gives the same file, as the
 * C server does (src/serve.c dcc_convert_mt_to_dotd_target). Next to a joined target it is the
 * client's only when it names the output; otherwise it is the user's and stays. With two or more
 * separate targets the client added none, so all stay and gcc writes them as a local compile
 * would: the C server takes out the first one and the .d file loses it.
 */
function replacedTarget(argv: ReadonlyArray<string | undefined>, skip: ReadonlySet<number>, output: string): number | undefined {
  let lone: number | undefined;
  let separate = 0;
  let joined = false;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (a === undefined || skip.has(i)) continue;
    if (a === '-MT' || a === '-MQ') {
      if (i + 1 === argv.length) break; // gcc refuses it
      separate++;
      if (a === '-MT') lone ??= i;
      i++; // the target itself, whatever it looks like
    } else if (a.startsWith('-MT') || a.startsWith('-MQ')) {
      joined = true;
    }
  }
  if (separate !== 1 || lone === undefined) return undefined;
  return !joined || argv[lone + 1] === output ? lone : undefined;
}

export function rerootArgs(
  scanned: ScannedArgs,
  paths: { readonly root: string | null; readonly output: string; readonly deps: string },
): RerootedArgs {
  const { root } = paths;
  if (root !== null && (!root.startsWith('/') || root.endsWith('/'))) throw new RangeError(`root must be absolute without a trailing "/", got "${root}"`);
  // Mark the output and input positions before anything shifts.
  const argv: Array<string | undefined> = [...scanned.argv];
  switch (scanned.outputForm) {
    case 'separate':
      argv[scanned.outputIndex + 1] = paths.output;
      break;
    case 'joined':
      argv[scanned.outputIndex] = `-o${paths.output}`;
      break;
    case 'bare':
      argv[scanned.outputIndex] = undefined; // replaced by an explicit -o at the end
      break;
  }
  const input = scanned.input;
  if (input.startsWith('/') && root !== null) argv[scanned.inputIndex] = underRoot(root, input);
  const skip = new Set<number>([scanned.inputIndex]);
  if (scanned.outputForm === 'separate') skip.add(scanned.outputIndex + 1);

  const mt = replacedTarget(argv, skip, scanned.output);
  const mtTarget = mt === undefined ? undefined : argv[mt + 1];
  if (mt !== undefined) argv[mt] = argv[mt + 1] = undefined;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (a === undefined || skip.has(i)) continue;
    const option = root === null ? undefined : INCLUDE_OPTIONS.find((o) => a.startsWith(o));
    if (option === undefined || root === null) continue;
    if (a === option) {
      const next = argv[i + 1];
      if (next !== undefined && !skip.has(i + 1) && next.startsWith('/')) argv[i + 1] = underRoot(root, next);
      i++;
    } else if (a.charAt(option.length) === '/') {
      argv[i] = option + underRoot(root, a.slice(option.length));
    }
  }
  const out = argv.filter((a): a is string => a !== undefined);
  if (scanned.outputForm === 'bare') out.push('-o', paths.output);
  if (!out.includes('-MD') && !out.includes('-MMD')) out.push('-MMD');
  out.push('-MF', paths.deps);
  return { argv: out, mtTarget };
}
