// The compiler command line of a protocol 1/2 job: scanArgs reads argv the way the distcc client
// does (src/arg.c dcc_scan_args) and decides whether the job may run here; rewriteArgs then puts
// the server's private temp files in place of the client's input and output.
//
// Exports:
//   scanArgs(argv) -> { ok: true, value: ScannedArgs } | { ok: false, reason }
//       Exactly one input (by extension, see SOURCE_EXTENSIONS), -c or -S present, nothing that
//       must run on the client's machine. The reason is one line for logs and SERR.
//       ScannedArgs.argv always carries an output: `-o <basename>.o` (.s with -S) is appended
//       when the client gave none, as the client itself does before it sends argv.
//   tempExtensionFor(input) -> '.i' | '.ii' | '.mi' | '.mii'   extension of the preprocessed file
//   rewriteArgs(scanned, { input, output }) -> string[]        argv to run (a new array)
//   serverPathOption(argv) -> reason | undefined               protocols 1/2: a -x that makes
//       the compiler preprocess (and so read server headers) again
//
// Pure: no files, no environment. The compiler allow-list (CVE-2004-2687) lives in allowlist.ts.

export const SOURCE_EXTENSIONS: readonly string[] = [
  'c', 'cc', 'cpp', 'cxx', 'cp', 'c++', 'C', 'i', 'ii', 'm', 'mm', 'mi', 'mii', 'M',
];

/** distcc's dcc_preproc_exten: the extension cpp output of this source gets. */
const PREPROCESSED_EXTENSION: Readonly<Record<string, '.i' | '.ii' | '.mi' | '.mii'>> = {
  c: '.i', i: '.i',
  cc: '.ii', cpp: '.ii', cxx: '.ii', cp: '.ii', 'c++': '.ii', C: '.ii', ii: '.ii',
  m: '.mi', mi: '.mi',
  mm: '.mii', M: '.mii', mii: '.mii',
};

/** -x languages whose meaning survives preprocessing on the client: anything else stays local. */
const ACCEPTED_LANGUAGES: ReadonlySet<string> = new Set([
  'none', 'c', 'c++', 'objective-c', 'objective-c++',
  'cpp-output', 'c++-cpp-output', 'objective-c-cpp-output', 'objective-c++-cpp-output',
]);

export interface ScannedArgs {
  /** The client's argv, plus `-o <implied>` at the end when it had no output. */
  readonly argv: readonly string[];
  /** Index in argv of the input file argument. */
  readonly inputIndex: number;
  readonly input: string;
  /** Index in argv of the argument carrying the output: `-o` (value at +1), `-oFILE`, or `x.o`. */
  readonly outputIndex: number;
  readonly outputForm: 'separate' | 'joined' | 'bare';
  /** The output name the client expects (given, or implied). */
  readonly output: string;
  readonly impliedOutput: boolean;
  /** -S: stop after compilation proper (assembler output); otherwise -c. */
  readonly assembleOnly: boolean;
}

export type ScanResult = { readonly ok: true; readonly value: ScannedArgs } | { readonly ok: false; readonly reason: string };

function refuse(reason: string): ScanResult {
  return { ok: false, reason };
}

function extensionOf(file: string): string | undefined {
  const base = basenameOf(file);
  const dot = base.lastIndexOf('.');
  return dot < 0 ? undefined : base.slice(dot + 1);
}

function basenameOf(file: string): string {
  const slash = file.lastIndexOf('/');
  return slash < 0 ? file : file.slice(slash + 1);
}

/** distcc's dcc_is_source: by extension only, case-sensitive (.C is C++, .M Objective-C++). */
export function isSource(file: string): boolean {
  const ext = extensionOf(file);
  return ext !== undefined && Object.prototype.hasOwnProperty.call(PREPROCESSED_EXTENSION, ext);
}

export function tempExtensionFor(input: string): '.i' | '.ii' | '.mi' | '.mii' {
  const ext = extensionOf(input);
  if (ext === undefined || !Object.prototype.hasOwnProperty.call(PREPROCESSED_EXTENSION, ext)) {
    throw new RangeError(`"${input}" has no source extension (${SOURCE_EXTENSIONS.map((e) => '.' + e).join(' ')})`);
  }
  return PREPROCESSED_EXTENSION[ext]!;
}

/** Options that make the compiler write or read files on the client's side, or tune for its CPU. */
function localOnlyReason(a: string): string | undefined {
  if (a === '-E') return '-E asks for preprocessing only, which the client does itself';
  if (a === '-march=native' || a === '-mtune=native') return `${a} targets the client's own CPU`;
  if (a === '-flto' || a.startsWith('-flto=')) return `${a} defers code generation to the link`;
  if (a === '-fprofile-arcs' || a === '-ftest-coverage' || a === '--coverage' || a.startsWith('-fprofile-') || a === '-fauto-profile' || a.startsWith('-fauto-profile=')) {
    return `${a} reads or writes profile files on the client`;
  }
  if (a === '-frepo') return '-frepo writes .rpo files on the client';
  if (a.startsWith('-dr')) return `${a} writes extra dump files`;
  if (a.startsWith('-Wa,') && (a.includes(',-a') || a.includes('--MD'))) return `${a} makes the assembler write files`;
  return undefined;
}

export function scanArgs(argv: readonly string[]): ScanResult {
  if (argv.length === 0) return refuse('empty command line (ARGC 0)');
  const first = argv[0]!;
  if (first === '') return refuse('empty compiler name');
  if (first.startsWith('-')) return refuse(`compiler name "${first}" starts with "-"`);
  let seenC = false;
  let seenS = false;
  let inputIndex = -1;
  let outputIndex = -1;
  let outputForm: ScannedArgs['outputForm'] = 'bare';
  let output: string | undefined;
  const noteOutput = (index: number, form: ScannedArgs['outputForm'], value: string): string | undefined => {
    if (output !== undefined) return `two outputs ("${output}" and "${value}"): a link, not a compile`;
    output = value;
    outputIndex = index;
    outputForm = form;
    return undefined;
  };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('-') && a !== '-') {
      const local = localOnlyReason(a);
      if (local !== undefined) return refuse(local);
      if (a === '-MD' || a === '-MMD' || a === '-MG' || a === '-MP') continue;
      if (a === '-MF' || a === '-MT' || a === '-MQ') {
        if (i + 1 >= argv.length) return refuse(`${a} needs an argument`);
        i++;
        continue;
      }
      if (a.startsWith('-MF') || a.startsWith('-MT') || a.startsWith('-MQ')) continue;
      if (a[1] === 'M') return refuse(`${a} implies -E and must run on the client`);
      if (a === '-S') { seenS = true; continue; }
      if (a === '-c') { seenC = true; continue; }
      if (a.startsWith('-x')) {
        let lang = a.slice(2);
        if (lang === '') {
          if (i + 1 >= argv.length) return refuse('-x needs a language');
          lang = argv[++i]!;
        }
        if (!ACCEPTED_LANGUAGES.has(lang)) return refuse(`-x ${lang} is not a C-family language this server compiles`);
        continue;
      }
      if (a === '-o') {
        if (i + 1 >= argv.length) return refuse('-o needs a file name');
        const why = noteOutput(i, 'separate', argv[i + 1]!);
        if (why !== undefined) return refuse(why);
        i++;
        continue;
      }
      if (a.startsWith('-o')) {
        const why = noteOutput(i, 'joined', a.slice(2));
        if (why !== undefined) return refuse(why);
      }
      continue;
    }
    if (isSource(a)) {
      if (inputIndex >= 0) return refuse(`two input files ("${argv[inputIndex]}" and "${a}")`);
      inputIndex = i;
    } else if (a.endsWith('.o')) {
      const why = noteOutput(i, 'bare', a);
      if (why !== undefined) return refuse(why);
    }
  }
  if (!seenC && !seenS) return refuse('neither -c nor -S: not a compile');
  if (inputIndex < 0) return refuse('no input file with a source extension');
  const input = argv[inputIndex]!;
  const base = basenameOf(input);
  if (base.startsWith('conftest.') || base.startsWith('tmp.conftest.')) return refuse(`autoconf test "${input}" runs on the client`);
  let full = argv;
  let impliedOutput = false;
  if (output === undefined) {
    const dot = base.lastIndexOf('.');
    output = (dot > 0 ? base.slice(0, dot) : base) + (seenS ? '.s' : '.o');
    full = [...argv, '-o', output];
    outputIndex = argv.length;
    outputForm = 'separate';
    impliedOutput = true;
  }
  if (output === '-') return refuse('output "-" (stdout) runs on the client');
  if (output === '') return refuse('empty output file name');
  return {
    ok: true,
    value: Object.freeze({ argv: Object.freeze([...full]), inputIndex, input, outputIndex, outputForm, output, impliedOutput, assembleOnly: seenS }),
  };
}

/** The argv to run: the input and the output replaced by the server's temp paths. */
export function rewriteArgs(scanned: ScannedArgs, paths: { readonly input: string; readonly output: string }): string[] {
  const argv = [...scanned.argv];
  argv[scanned.inputIndex] = paths.input;
  switch (scanned.outputForm) {
    case 'separate':
      argv[scanned.outputIndex + 1] = paths.output;
      break;
    case 'joined':
      argv[scanned.outputIndex] = `-o${paths.output}`;
      break;
    case 'bare':
      // A bare "x.o" operand is how distcc recognises the output; gcc would treat it as a link
      // input, so give the compiler an explicit -o instead.
      argv.splice(scanned.outputIndex, 1, '-o', paths.output);
      break;
  }
  return argv;
}

/** -x languages that are already preprocessed: the compiler reads no #include in them. */
const PREPROCESSED_LANGUAGES: ReadonlySet<string> = new Set([
  'none', 'cpp-output', 'c++-cpp-output', 'objective-c-cpp-output', 'objective-c++-cpp-output',
]);

/**
 * Protocols 1 and 2 carry preprocessed source: an option that makes the compiler read a server
 * path has nothing legitimate to do (issue 21: `-x c` with a source that #includes a server file
 * sends that file back in the diagnostics). The real client (distcc src/arg.c, src/strip.c)
 * sends `-x c|c++|objective-c...` as the user gave it, so such a job is refused and the client
 * compiles it itself (it retries locally after a failed remote compile). Options naming server
 * programs or files (-B, -iplugindir, -imultilib, @file, -specs, -fplugin ...) are
 * allowlist.ts's, for every protocol.
 */
export function serverPathOption(argv: readonly string[]): string | undefined {
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('-x')) {
      const lang = a === '-x' ? (argv[i + 1] ?? '') : a.slice(2);
      if (!PREPROCESSED_LANGUAGES.has(lang)) return `-x ${lang} makes the server preprocess again, where #include would read the server's files: the client preprocesses (protocols 1 and 2)`;
      if (a === '-x') i++;
      continue;
    }
  }
  return undefined;
}
