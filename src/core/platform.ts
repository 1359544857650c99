/**
 * ctfs keeps integers in shared memory as native u32 words and defines every byte format as
 * little-endian; the two agree only on little-endian hosts (x86-64, arm64), so refuse others
 * at load time rather than produce different bytes.
 */
const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
if (!littleEndian) throw new Error('ctfs requires a little-endian host');
