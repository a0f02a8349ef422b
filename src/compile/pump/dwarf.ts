// Removes the job's temp root from the debug information of an object built by a protocol-3
// job (distcc src/fix_debug_info.c, extended). With pump the compiler ran in <root><CDIR> and
// read headers from <root>/usr/include/..., so DW_AT_comp_dir and file names carry the temp
// path. Every occurrence of the root in the string-holding debug sections is overwritten with
// "/" repeated to the same length: "<root>/usr/include" becomes "////.../usr/include", the same
// file for every tool, and no offset in the object moves.
// Sections rewritten: .debug_info and .debug_str (distcc 3.4), .debug_line_str (gcc 11+ puts the
// compile dir there; distcc 3.4 leaks it) and .debug_line (DWARF 2-4 keep include directories
// inline there). Every other byte is left as it was. A file that is not ELF, has no section
// table, or is truncated is returned unchanged; compressed sections (SHF_COMPRESSED) are skipped
// and reported.
//
// Exports: scrubDebugPaths(bytes, root) -> { bytes, replaced, skipped }
//          scrubDebugPathsInFile(file, root) -> Promise<{ replaced, skipped }>

import fs from 'node:fs/promises';

export const DEBUG_SECTIONS: readonly string[] = ['.debug_info', '.debug_str', '.debug_line_str', '.debug_line'];

const SHT_NOBITS = 8;
const SHF_COMPRESSED = 0x800;
const SHN_XINDEX = 0xffff;

export interface ScrubResult {
  /** The object to send: the input itself when nothing changed, else a patched copy. */
  readonly bytes: Buffer;
  /** How many occurrences of the root were overwritten. */
  readonly replaced: number;
  /** Debug sections left alone (compressed, or lying outside the file). */
  readonly skipped: readonly string[];
}

interface Section {
  readonly name: number;
  readonly type: number;
  readonly flags: bigint;
  readonly offset: number;
  readonly size: number;
  readonly link: number;
}

/** Reads the section headers of an ELF32/ELF64 file of either byte order; undefined when it is not one. */
function readSections(buf: Buffer): { sections: Section[]; strtab: Section } | undefined {
  if (buf.length < 52 || buf[0] !== 0x7f || buf[1] !== 0x45 || buf[2] !== 0x4c || buf[3] !== 0x46) return undefined;
  const is64 = buf[4] === 2;
  if (!is64 && buf[4] !== 1) return undefined;
  const le = buf[5] === 1;
  if (!le && buf[5] !== 2) return undefined;
  if (is64 && buf.length < 64) return undefined;
  const u16 = (o: number): number => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const u64 = (o: number): bigint => (le ? buf.readBigUInt64LE(o) : buf.readBigUInt64BE(o));
  const word = (o: number): bigint => (is64 ? u64(o) : BigInt(u32(o)));
  const shoff = word(is64 ? 0x28 : 0x20);
  const shentsize = u16(is64 ? 0x3a : 0x2e);
  let shnum = u16(is64 ? 0x3c : 0x30);
  const minEntry = is64 ? 64 : 40;
  if (shoff === 0n || shentsize < minEntry || shoff > BigInt(buf.length)) return undefined;
  const base = Number(shoff);
  const at = (i: number): Section | undefined => {
    const o = base + i * shentsize;
    if (o + minEntry > buf.length) return undefined;
    return is64
      ? { name: u32(o), type: u32(o + 4), flags: u64(o + 8), offset: safeNumber(u64(o + 24)), size: safeNumber(u64(o + 32)), link: u32(o + 40) }
      : { name: u32(o), type: u32(o + 4), flags: BigInt(u32(o + 8)), offset: u32(o + 16), size: u32(o + 20), link: u32(o + 24) };
  };
  const first = at(0);
  if (first === undefined) return undefined;
  if (shnum === 0) shnum = first.size; // more than 0xff00 sections: the count lives in section 0
  if (shnum === 0 || base + shnum * shentsize > buf.length) return undefined;
  const sections: Section[] = [];
  for (let i = 0; i < shnum; i++) sections.push(at(i)!);
  let shstrndx = u16(is64 ? 0x3e : 0x32);
  if (shstrndx === SHN_XINDEX) shstrndx = first.link;
  if (shstrndx >= sections.length) return undefined;
  return { sections, strtab: sections[shstrndx]! };
}

function safeNumber(v: bigint): number {
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

function sectionName(buf: Buffer, strtab: Section, s: Section): string | undefined {
  const start = strtab.offset + s.name;
  const end = strtab.offset + strtab.size;
  if (s.name >= strtab.size || end > buf.length) return undefined;
  const nul = buf.indexOf(0, start);
  if (nul < 0 || nul >= end) return undefined;
  return buf.toString('latin1', start, nul);
}

export function scrubDebugPaths(object: Buffer, root: string): ScrubResult {
  if (root.length < 2 || !root.startsWith('/')) throw new RangeError(`root must be an absolute path other than "/", got "${root}"`);
  const table = readSections(object);
  if (table === undefined) return { bytes: object, replaced: 0, skipped: [] };
  const needle = Buffer.from(root);
  const slashes = Buffer.alloc(needle.length, 0x2f);
  let out: Buffer | undefined;
  let replaced = 0;
  const skipped: string[] = [];
  for (const s of table.sections) {
    const name = sectionName(object, table.strtab, s);
    if (name === undefined || !DEBUG_SECTIONS.includes(name) || s.type === SHT_NOBITS) continue;
    if ((s.flags & BigInt(SHF_COMPRESSED)) !== 0n || s.offset + s.size > object.length) {
      skipped.push(name);
      continue;
    }
    const end = s.offset + s.size;
    for (let at = object.indexOf(needle, s.offset); at >= 0 && at + needle.length <= end; at = object.indexOf(needle, at + needle.length)) {
      out ??= Buffer.from(object); // copy on first change: the caller's buffer stays intact
      slashes.copy(out, at);
      replaced++;
    }
  }
  return { bytes: out ?? object, replaced, skipped };
}

/** Rewrites the object file in place when anything changed. */
export async function scrubDebugPathsInFile(file: string, root: string): Promise<{ replaced: number; skipped: readonly string[] }> {
  const before = await fs.readFile(file);
  const { bytes, replaced, skipped } = scrubDebugPaths(before, root);
  if (replaced > 0) await fs.writeFile(file, bytes);
  return { replaced, skipped };
}
