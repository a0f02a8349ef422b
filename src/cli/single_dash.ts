// Command lines in the style of the distcache programs: single-dash words (-listen, -sessions),
// matched exactly, each option's argument in the next word whatever it looks like. minimist alone
// would split "-listen" into -l -i -s -t -e -n, so every known word is first rewritten to an
// unambiguous "--word=value" / "--word" and only then handed to minimist; anything unknown stops
// the parse with the original programs' message. "--word" is accepted as a spelling of "-word".

import minimist from 'minimist';

export interface SingleDashSpec {
  /** Options that take an argument (without the dash). */
  readonly strings: readonly string[];
  /** Options that take none. */
  readonly booleans: readonly string[];
  /** Options that may be given more than once (their value is every argument, in order). */
  readonly repeatable?: readonly string[];
  /** Other spellings: alias -> canonical name (dc_client's -connect for -server). */
  readonly aliases?: Readonly<Record<string, string>>;
}

export type SingleDashValues = {
  readonly [name: string]: string | readonly string[] | boolean | undefined;
};

export type SingleDashResult =
  | { readonly kind: 'ok'; readonly values: SingleDashValues }
  /** -h, -help or -? : print the usage and exit 0. */
  | { readonly kind: 'help' }
  /** The message to print before the usage; exit 1. */
  | { readonly kind: 'error'; readonly message: string };

const HELP_WORDS = new Set(['-h', '-help', '-?', '--help']);

/** Parses argv (without node and the script); never throws for user input. */
export function parseSingleDash(argv: readonly string[], spec: SingleDashSpec): SingleDashResult {
  const aliases = spec.aliases ?? {};
  const strings = new Set(spec.strings);
  const booleans = new Set(spec.booleans);
  const normalised: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (HELP_WORDS.has(arg)) return { kind: 'help' };
    const word = arg.startsWith('--') ? arg.slice(2) : arg.startsWith('-') ? arg.slice(1) : undefined;
    const name = word === undefined ? undefined : (aliases[word] ?? word);
    if (name !== undefined && strings.has(name)) {
      // Like the original, the next word is the argument even when it starts with a dash.
      if (i + 1 >= argv.length) return { kind: 'error', message: `Error, -${word} requires an argument` };
      normalised.push(`--${name}=${argv[++i]!}`);
    } else if (name !== undefined && booleans.has(name)) {
      normalised.push(`--${name}`);
    } else {
      return { kind: 'error', message: `Error, "${arg}" not recognised` };
    }
  }
  let stray: string | undefined;
  const parsed = minimist(normalised, {
    string: [...strings],
    boolean: [...booleans],
    unknown: (a) => {
      stray ??= a;
      return false;
    },
  });
  // Unreachable for input built above; kept so a future edit cannot let a stray word through.
  if (stray !== undefined) return { kind: 'error', message: `Error, "${stray}" not recognised` };
  const repeatable = new Set(spec.repeatable ?? []);
  const values: Record<string, string | readonly string[] | boolean | undefined> = {};
  for (const name of strings) {
    const v = parsed[name] as string | string[] | undefined;
    const all = v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)];
    // Without repetition, the last one given wins (as in the original's argv loop).
    values[name] = repeatable.has(name) ? all : all[all.length - 1];
  }
  for (const name of booleans) values[name] = parsed[name] === true;
  return { kind: 'ok', values: Object.freeze(values) };
}

/** "Error, -<opt> given an invalid argument": the original's wording for a value out of range. */
export function invalidArgument(option: string): string {
  return `Error, -${option} given an invalid argument`;
}

/** How a CLI reports an option problem: the message, then the usage, both on stderr. */
export function printOptionError(message: string, usage: string, write: (text: string) => void = (t) => process.stderr.write(t)): void {
  write(`${message}\n${usage}`);
}

/**
 * Parses a whole decimal number (no sign, no spaces, no hex) within [min, max]; undefined when the
 * text is anything else, so the caller can print invalidArgument().
 */
export function parseDecimal(text: string, min: number, max: number): number | undefined {
  if (!/^\d{1,16}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}
