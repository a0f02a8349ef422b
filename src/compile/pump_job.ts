// One protocol-3 (pump) job: the client sent its working directory and every header the compile
// reads; the server rebuilds them in a private tree (pump/tree.ts refuses every path that
// escapes it), re-roots argv into the tree (pump/argv.ts), runs the compiler there, removes the
// temp root from the object's debug info (pump/dwarf.ts) and from the .d file
// (pump/depfile.ts), and answers DOTO then DOTD. In the sandbox (--sandbox) the tree stands at
// the client's own paths instead (sandbox/tree_mounts.ts): argv, debug info and .d need no
// re-rooting, and an absolute #include finds the client's file or nothing. The object and .d live outside the tree, so
// nothing the client sent can stand in their way. With the object cache, the tree and the temp
// files are made, and the bodies decompressed, only when the job misses: the key reads the
// files as sent (LZO), and a request whose tree would be refused never compiled, so it has no
// entry to hit.

import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import { checkCompiler } from './allowlist';
import { scanArgs } from './args';
import { runCompiler, type CompilerRun } from './compiler_process';
import { EXIT } from '../errors';
import { FIXED_NAMES, outcomeOf, refusal, type JobContext, type JobOptions, type JobOutcome, type JobSettings } from './job';
import { rerootArgs } from './pump/argv';
import { cleanDepfile } from './pump/depfile';
import { scrubDebugPathsInFile } from './pump/dwarf';
import { PumpTree } from './pump/tree';
import { treeBinds } from './sandbox/tree_mounts';
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

/** One entry of the job's tree as sent, its body decompressed: what the tree is made of. */
type TreeEntry = { readonly kind: 'file'; readonly name: string; readonly body: Buffer } | { readonly kind: 'link'; readonly name: string; readonly target: string };

export async function runPumpJob(request: CompileRequest, settings: JobSettings, options: JobOptions): Promise<JobOutcome> {
  const ctx: JobContext = { request, settings };
  const scanned = scanArgs(request.argv);
  if (!scanned.ok) return refusal(ctx, scanned.reason);
  const clientCwd = request.cwd;
  if (clientCwd === undefined || !clientCwd.startsWith('/')) return refusal(ctx, `CDIR "${clientCwd ?? ''}" is not an absolute path`, { ret: EXIT.PROTOCOL_ERROR });
  const badTree = (error: unknown): JobOutcome => ({ ...refusal(ctx, (error as Error).message, { ret: EXIT.PROTOCOL_ERROR }), input: scanned.value.input });
  const sent = request.files ?? [];
  let inflated: TreeEntry[] | undefined;
  /** The tree with its bodies decompressed, once (throws on a corrupt body). With the cache, only a job that compiles needs it: the key reads the bodies as sent. */
  const treeOf = (): TreeEntry[] =>
    (inflated ??= sent.map((entry) => (entry.kind === 'file' ? { kind: 'file', name: entry.name, body: decompressLzo(entry.body) } : { kind: 'link', name: entry.name, target: entry.target })));
  let made: { readonly tree: PumpTree; readonly cwd: string } | undefined;
  /** Writes the tree (removed when the job ends); a refusal when a body is corrupt or a name in it escapes. */
  const makeTree = async (): Promise<JobOutcome | undefined> => {
    let files: TreeEntry[];
    try {
      files = treeOf();
    } catch (error) {
      return badTree(error);
    }
    const tree = await PumpTree.create({ tmpDir: settings.tmpDir, name: treeNameOf(request.argv, clientCwd) });
    options.hold(async () => {
      if (!settings.saveTemps) await tree.remove();
    });
    try {
      const cwd = await tree.makeCwd(clientCwd);
      for (const entry of files) {
        if (entry.kind === 'file') await tree.writeFile(entry.name, entry.body);
        else await tree.makeLink(entry.name, entry.target);
      }
      await tree.verify();
      made = { tree, cwd };
      return undefined;
    } catch (error) {
      return badTree(error);
    }
  };
  // With the cache, the tree is written only when the job compiles: a hit writes and removes none.
  // Unless a response file (@file) is to be checked first: it lives in the tree.
  const lazy = options.cache !== undefined && !scanned.value.argv.some((a) => a.startsWith('@'));
  if (!lazy) {
    const refused = await makeTree();
    if (refused !== undefined) return refused;
  }
  // The job's root and cwd serve the check of response files alone, of which a lazy job has none.
  const checked = await checkCompiler(scanned.value.argv, { ...settings.policy, job: { root: made?.tree.root ?? FIXED_NAMES.root, cwd: made?.cwd ?? clientCwd } });
  if (!checked.ok) return refusal(ctx, checked.reason);
  const scan = { ...scanned.value, argv: checked.argv };
  const compile = async (): Promise<JobOutcome> => {
    if (made === undefined) {
      const refused = await makeTree();
      if (refused !== undefined) return refused;
    }
    const { tree, cwd } = made!;
    const temps = new TempFiles(settings.tmpDir, { keep: settings.saveTemps, inline: settings.inlineCleanup });
    options.hold(() => temps.removeAll());
    const output = temps.create(scan.assembleOnly ? '.s' : '.o');
    const deps = temps.create('.deps');
    // In the sandbox the tree stands at the client's own paths: nothing to re-root.
    const { argv, mtTarget } = rerootArgs(scan, { root: settings.sandbox === undefined ? tree.root : null, output, deps });
    let sandbox: CompilerRun['sandbox'];
    if (settings.sandbox !== undefined) {
      const outputs = [{ from: output, to: output, writable: true }, { from: deps, to: deps, writable: true }];
      const occupied = [...await settings.sandbox.occupied(argv[0]!, settings.env), tree.root, output, deps];
      let binds;
      try {
        binds = await treeBinds(tree.root, { occupied, writableParents: ['/tmp'] });
      } catch (error) {
        return { ...refusal(ctx, (error as Error).message, { ret: EXIT.PROTOCOL_ERROR }), input: scan.input };
      }
      sandbox = { sandbox: settings.sandbox, cwd: clientCwd, root: settings.tmpDir, binds: [...outputs, ...binds] };
    }
    const run = await runCompiler({ argv, cwd, env: settings.env, nice: settings.nice, lifetimeMs: settings.lifetimeMs, signal: options.signal, scratchDir: settings.tmpDir, sandbox });
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
  // The key reads the bodies as sent (see cache_key); the content is inflated only for a miss's clock check and compile.
  const files = sent.map((entry) => (entry.kind === 'file' ? { kind: 'file' as const, name: entry.name, body: entry.body, lzo: true } : entry));
  const contentOf = (index: number): Uint8Array => {
    const entry = treeOf()[index]!;
    return entry.kind === 'file' ? entry.body : Buffer.alloc(0);
  };
  return await options.cache.produce({ program: fixed[0]!, protocol: 3, sandboxed: settings.sandbox !== undefined, argv: fixed, cwd: clientCwd, files, contentOf }, compile, { compiler: fixed[0]!, input: scan.input });
}
