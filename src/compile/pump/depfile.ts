// The .d file a protocol-3 job sends back (DOTD), cleaned the way distcc src/dotd.c
// dcc_cleanup_dotd does it: the server's temp .o path becomes the name the client expects (its
// -MT target when it gave one, else its output name), then every occurrence of the job's root is
// removed, so "<root>/usr/include/stdio.h" reads "/usr/include/stdio.h" again. Unlike the C code
// (first occurrence per line, lines capped at MAX_DOTD_LINE_LEN) every occurrence is replaced
// and lines have no length limit: no temp path may leak to the client's build.
//
// Exports: cleanDepfile(bytes, { root, serverOutput, clientTarget }) -> Buffer

/** Replaces every occurrence of `needle` in `hay` (bytes, not text: paths need not be UTF-8). */
function replaceAll(hay: Buffer, needle: Buffer, replacement: Buffer): Buffer {
  if (needle.length === 0) return hay;
  const parts: Buffer[] = [];
  let from = 0;
  for (let at = hay.indexOf(needle, from); at >= 0; at = hay.indexOf(needle, from)) {
    parts.push(hay.subarray(from, at), replacement);
    from = at + needle.length;
  }
  if (from === 0) return hay;
  parts.push(hay.subarray(from));
  return Buffer.concat(parts);
}

export function cleanDepfile(
  depfile: Uint8Array,
  names: { readonly root: string; readonly serverOutput: string; readonly clientTarget: string },
): Buffer {
  if (names.root === '' || names.root === '/') throw new RangeError(`root "${names.root}" would remove every "/"`);
  const bytes = Buffer.from(depfile.buffer, depfile.byteOffset, depfile.byteLength);
  const retargeted = replaceAll(bytes, Buffer.from(names.serverOutput), Buffer.from(names.clientTarget));
  return replaceAll(retargeted, Buffer.from(names.root), Buffer.alloc(0));
}
