/**
 * @file Minimal x86-64 ELF shared objects, written byte by byte: a SONAME, NEEDED entries and
 * nothing else. The system's dynamic loader (`ldd`) maps them and resolves their NEEDED entries
 * exactly as it does a real library's, which is all test/unit/cuda-provider.test.ts asks of its
 * stand-ins for the CUDA libraries. Writing them here, rather than with a C compiler, keeps
 * `npm test` free of a gcc install.
 *
 * Layout, one read-write PT_LOAD mapping the whole file at address 0 (the loader adjusts the
 * dynamic entries in place, so the segment is writable): ELF header, 3 program headers (PT_LOAD,
 * PT_DYNAMIC, PT_GNU_STACK non-executable, as glibc >= 2.41 requires of loadable objects), the
 * string table, one null symbol, the dynamic section. No sections, relocations or code.
 */
import { writeFileSync } from 'node:fs';

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_GNU_STACK = 0x6474e551;
const RW = 6;
const DT = { NULL: 0n, NEEDED: 1n, STRTAB: 5n, SYMTAB: 6n, STRSZ: 10n, SYMENT: 11n, SONAME: 14n };
const EHDR = 64;
const PHDR = 56;
const SYM = 24;

/**
 * Writes a shared object named `soname` that NEEDs `needed` (libc.so.6 first, as a compiled
 * library would).
 */
export function writeSharedObject(path: string, soname: string, needed: readonly string[]): void {
  writeFileSync(path, sharedObject(soname, ['libc.so.6', ...needed]));
}

function sharedObject(soname: string, needed: readonly string[]): Buffer {
  const names = [soname, ...needed];
  const offsets: number[] = [];
  let strtab = '\0';
  for (const n of names) {
    offsets.push(Buffer.byteLength(strtab));
    strtab += `${n}\0`;
  }
  const str = Buffer.from(strtab, 'utf8');
  const phnum = 3;
  const strOff = EHDR + PHDR * phnum;
  const symOff = (strOff + str.length + 7) & ~7;
  const dynOff = symOff + SYM; // the null symbol: 24 zero bytes
  const dynamic: [bigint, number][] = [
    ...needed.map((_, i): [bigint, number] => [DT.NEEDED, offsets[i + 1]!]),
    [DT.SONAME, offsets[0]!],
    [DT.STRTAB, strOff],
    [DT.SYMTAB, symOff],
    [DT.STRSZ, str.length],
    [DT.SYMENT, SYM],
    [DT.NULL, 0],
  ];
  const size = dynOff + 16 * dynamic.length;
  const b = Buffer.alloc(size);
  // ELF header: 64-bit, little-endian, version 1, ET_DYN, EM_X86_64.
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  b.writeUInt16LE(3, 16);
  b.writeUInt16LE(62, 18);
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(BigInt(EHDR), 32); // e_phoff
  b.writeUInt16LE(EHDR, 52);
  b.writeUInt16LE(PHDR, 54);
  b.writeUInt16LE(phnum, 56);
  b.writeUInt16LE(64, 58); // e_shentsize (no sections)
  const programHeader = (i: number, type: number, at: number, bytes: number, align: number) => {
    const o = EHDR + PHDR * i;
    b.writeUInt32LE(type, o);
    b.writeUInt32LE(RW, o + 4);
    for (const field of [8, 16, 24]) b.writeBigUInt64LE(BigInt(at), o + field); // offset, vaddr, paddr
    b.writeBigUInt64LE(BigInt(bytes), o + 32); // filesz
    b.writeBigUInt64LE(BigInt(bytes), o + 40); // memsz
    b.writeBigUInt64LE(BigInt(align), o + 48);
  };
  programHeader(0, PT_LOAD, 0, size, 0x1000);
  programHeader(1, PT_DYNAMIC, dynOff, 16 * dynamic.length, 8);
  programHeader(2, PT_GNU_STACK, 0, 0, 16);
  str.copy(b, strOff);
  dynamic.forEach(([tag, value], i) => {
    b.writeBigInt64LE(tag, dynOff + 16 * i);
    b.writeBigUInt64LE(BigInt(value), dynOff + 16 * i + 8);
  });
  return b;
}
