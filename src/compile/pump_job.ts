// One protocol-3 (pump) job: the client sent its working directory and every header the compile
// reads; the server rebuilds them in a private tree (pump/tree.ts refuses every path that
// escapes it), re-roots argv into the tree (pump/argv.ts), runs the compiler there, removes the
// temp root from the object's debug info (pump/dwarf.ts) and from the .d file
// (pump/depfile.ts), and answers DOTO then DOTD. The object and .d live outside the tree, so
// nothing the client sent can stand in their way.

import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import { checkCompiler } from './allowlist';
import { scanArgs } from './args';
import { runCompiler } from './compiler_process';
import { EXIT } from '../errors';
import { FIXED_NAMES, outcomeOf, refusal, type JobContext, type JobOptions, type JobOutcome, type JobSettings } from './job';
import { rerootArgs } from './pump/argv';
import { cleanDepfile } from './pump/depfile';
import { scrubDebugPathsInFile } from './pump/dwarf';
import { PumpTree } from './pump/tree';
import { TempFiles } from './temp_files';
import { decompressLzo } from './wire/lzo';
import type { CompileRequest } from './wire/request';

/**
 * The job tree's name for this command line and directory (see PumpTree.create): the same
 * request gets the same root, and the same bytes from gcc; jobs at once (other files) differ.
 */
function treeNameOf(argv: readonly string[], cwd: string): string {
  const digest = createHash('sha256').update(JSON.stringify([argv, cwd])).digest();
  let name = '';
  for (let i = 0; i < 6; i++) name += 'abcdefghijklmnopqrstuvwxyz0123456789'[digest[i]! % 36];
  return name;
}

export async function runPumpJob(request: CompileRequest, settings: JobSettings, options: JobOptions): Promise<JobOutcome> {
  const ctx: JobContext = { request, settings };
  const scanned = scanArgs(request.argv);
  if (!scanned.ok) return refusal(ctx, scanned.reason);
  if (request.cwd === undefined || !request.cwd.startsWith('/')) return refusal(ctx, `CDIR "${request.cwd ?? ''}" is not an absolute path`, { ret: EXIT.PROTOCOL_ERROR });
  const tree = await PumpTree.create({ tmpDir: settings.tmpDir, name: treeNameOf(request.argv, request.cwd) });
  const temps = new TempFiles(settings.tmpDir, { keep: settings.saveTemps, inline: settings.inlineCleanup });
  try {
    let cwd: string;
    // What the cache key reads: the tree as sent, bodies decompressed.
    const files: Array<{ kind: 'file'; name: string; body: Buffer } | { kind: 'link'; name: string; target: string }> = [];
    try {
      cwd = await tree.makeCwd(request.cwd);
      for (const entry of request.files ?? []) {
        if (entry.kind === 'file') {
          const body = decompressLzo(entry.body);
          await tree.writeFile(entry.name, body);
          files.push({ kind: 'file', name: entry.name, body });
        } else {
          await tree.makeLink(entry.name, entry.target);
          files.push({ kind: 'link', name: entry.name, target: entry.target });
        }
      }
      await tree.verify();
    } catch (error) {
      return { ...refusal(ctx, (error as Error).message, { ret: EXIT.PROTOCOL_ERROR }), input: scanned.value.input };
    }
    const checked = await checkCompiler(scanned.value.argv, { ...settings.policy, job: { root: tree.root, cwd } });
    if (!checked.ok) return refusal(ctx, checked.reason);
    const scan = { ...scanned.value, argv: checked.argv };
    const output = temps.create(scan.assembleOnly ? '.s' : '.o');
    const deps = temps.create('.deps');
    const { argv, mtTarget } = rerootArgs(scan, { root: tree.root, output, deps });
    const compile = async (): Promise<JobOutcome> => {
      const run = await runCompiler({ argv, cwd, env: settings.env, nice: settings.nice, lifetimeMs: settings.lifetimeMs, signal: options.signal, scratchDir: settings.tmpDir });
      return await outcomeOf(ctx, {
        run,
        compiler: argv[0]!,
        input: scan.input,
        readObject: async () => {
          if (!scan.assembleOnly) await scrubDebugPathsInFile(output, tree.root);
          const object = await fs.readFile(output);
          const depfile = cleanDepfile(await fs.readFile(deps), { root: tree.root, serverOutput: output, clientTarget: mtTarget ?? scan.output });
          return { object, depfile };
        },
      });
    };
    if (options.cache === undefined) return await compile();
    // The client's output name stays in the key: without -MT it is the target of the .d file.
    const fixed = rerootArgs(scan, { root: FIXED_NAMES.root, output: `/${FIXED_NAMES.output}/${scan.output}`, deps: `/${FIXED_NAMES.output}.deps` }).argv;
    return await options.cache.produce({ program: argv[0]!, protocol: 3, argv: fixed, cwd: request.cwd, files }, compile, { compiler: argv[0]!, input: scan.input });
  } finally {
    options.hold(async () => {
      await temps.removeAll();
      if (!settings.saveTemps) await tree.remove();
    });
  }
}
