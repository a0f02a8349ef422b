// The import graph of src/ and its cycles: `npm test` runs this before the tests and fails on any
// cycle. The layers are meant to point one way (cli -> compile | cache -> activation | log ->
// wire and small utilities such as errors); a cycle means two files cannot be read, tested or
// loaded one without the other. Every import counts, a type-only one too (`import type`, `export
// type ... from`, `typeof import('...')`): it ties the files together for a reader and the
// compiler just the same. So do `export ... from` and the lazy `require('...')` calls that keep
// start-up short. The edges are read with the TypeScript scanner (ts.preProcessFile), not by
// running anything. Prints a summary (files, edges, edges between the folders of src/), then each
// cycle as a path; exits 1 if there is one.
//
// Usage: node dist/scripts/import_cycles.js [SRC_DIR]    (default: the repository's src/)

import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** File (relative to the source root, e.g. "cli/distccd.ts") -> the files it imports. */
export type ImportGraph = ReadonlyMap<string, readonly string[]>;

function sourceFiles(dir: string, root: string, out: string[] = []): string[] {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) sourceFiles(full, root, out);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path.relative(root, full));
  }
  return out.sort();
}

/** The file a relative specifier names ("./x" -> x.ts or x/index.ts), if it is under the root. */
function resolveSpecifier(root: string, from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined; // a package or a builtin: outside the graph
  const base = path.join(path.dirname(from), spec).replace(/\.js$/, '');
  for (const candidate of [`${base}.ts`, path.join(base, 'index.ts')]) {
    if (!candidate.startsWith('..') && fs.existsSync(path.join(root, candidate))) return candidate;
  }
  return undefined;
}

/** Reads every .ts file under `root` and returns who imports whom. */
export function readImportGraph(root: string): ImportGraph {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(root, root)) {
    const info = ts.preProcessFile(fs.readFileSync(path.join(root, file), 'utf8'), true, true);
    const targets = new Set<string>();
    for (const imported of info.importedFiles) {
      const target = resolveSpecifier(root, file, imported.fileName);
      if (target !== undefined) targets.add(target);
    }
    graph.set(file, [...targets].sort());
  }
  return graph;
}

/**
 * The cycles of the graph, one per strongly connected component that has one (Tarjan), each as a
 * path that starts and ends at the same file: ["a.ts", "b.ts", "a.ts"].
 */
export function findCycles(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  const connect = (node: string): void => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        connect(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      const selfLoop = (graph.get(node) ?? []).includes(node);
      if (component.length > 1 || selfLoop) components.push(component);
    }
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) connect(node);
  return components.map((component) => cycleWithin(graph, new Set(component)));
}

/** A shortest cycle through the component's first file (in name order), by breadth-first search. */
function cycleWithin(graph: ImportGraph, component: ReadonlySet<string>): string[] {
  const start = [...component].sort()[0]!;
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const next of graph.get(node) ?? []) {
      if (!component.has(next)) continue;
      if (next === start) {
        const between: string[] = [];
        for (let at: string | undefined = node; at !== undefined && at !== start; at = previous.get(at)) between.unshift(at);
        return [start, ...between, start];
      }
      if (!previous.has(next)) {
        previous.set(next, node);
        queue.push(next);
      }
    }
  }
  return [start, start];
}

/** "cli/distccd.ts" -> "cli"; a file at the top of the root is its own area ("errors"). */
function areaOf(file: string): string {
  const parts = file.split('/');
  return parts.length > 1 ? parts[0]! : file.replace(/\.ts$/, '');
}

/** The summary lines: sizes, and how many imports go from each folder of src/ to each other one. */
export function describeGraph(graph: ImportGraph): string[] {
  const edges = [...graph.values()].reduce((n, targets) => n + targets.length, 0);
  const between = new Map<string, number>();
  for (const [file, targets] of graph) {
    for (const target of targets) {
      const key = `${areaOf(file)} -> ${areaOf(target)}`;
      if (areaOf(file) !== areaOf(target)) between.set(key, (between.get(key) ?? 0) + 1);
    }
  }
  return [
    `import graph: ${graph.size} files, ${edges} imports (type-only, re-exports and lazy require() included)`,
    'between folders:',
    ...[...between.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([key, n]) => `  ${key}  ${n}`),
  ];
}

function main(): void {
  const root = path.resolve(process.argv[2] ?? path.join(__dirname, '..', '..', 'src'));
  const graph = readImportGraph(root);
  for (const line of describeGraph(graph)) console.log(line);
  const cycles = findCycles(graph);
  if (cycles.length === 0) {
    console.log(`import cycles: none in ${path.relative(process.cwd(), root) || '.'}`);
    return;
  }
  console.error(`import cycles: ${cycles.length} in ${path.relative(process.cwd(), root) || '.'} (make the arrows point one way):`);
  for (const cycle of cycles) console.error(`  ${cycle.join(' -> ')}`);
  process.exitCode = 1;
}

if (require.main === module) main();
