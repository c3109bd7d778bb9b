/**
 * Hostile Cookie headers, built from a real logged-in session with the real key (and the real
 * iron-webcrypto for sealed values), with what each path must make of them. Shared by the
 * hostile-input tests and the secret-handling test.
 * @module
 */
import { defaults, seal } from "iron-webcrypto";
import type { InvalidReason } from "../../mod.ts";
import { CookieSigner, Keyring } from "../../src/signer.ts";
import { generateUid } from "../../src/id.ts";
import { KEY, type Mode, OTHER_KEY, type Path, type Valid } from "./security_env.ts";

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/**
 * Flips one bit of the base64url character at `i` (negative: from the end): the top bit of its
 * 6, so the decoded bytes always change (a low bit of the last character can be padding).
 */
export function flipBit(s: string, i: number): string {
  const at = i < 0 ? s.length + i : i;
  const index = B64URL.indexOf(s[at]!);
  if (index < 0) throw new Error(`not a base64url character at ${at}`);
  return s.slice(0, at) + B64URL[index ^ 32] + s.slice(at + 1);
}

/** The eight `*`-separated parts of an iron seal. */
const IRON = {
  prefix: 0,
  keyId: 1,
  salt: 2,
  iv: 3,
  ciphertext: 4,
  expiry: 5,
  macSalt: 6,
  mac: 7,
} as const;

/** Flips a bit in the middle of one part of an iron seal. */
export function flipIron(sealed: string, part: keyof typeof IRON): string {
  const parts = sealed.split("*");
  const p = parts[IRON[part]]!;
  parts[IRON[part]] = flipBit(p, Math.floor(p.length / 2));
  return parts.join("*");
}

/** Seals `value` with the real key as the manager's Sealer does (same key id), with `encode`. */
export async function sealWithRealKey(
  value: unknown,
  validSealed: string,
  encode?: (v: unknown) => string | Uint8Array,
): Promise<string> {
  const id = validSealed.split("*")[1]!;
  return await seal(value, { id, secret: KEY }, {
    ...defaults,
    ...(encode ? { encode: encode as (v: unknown) => string } : {}),
  });
}

/** A sealed record as the manager writes it (the fields a forgery must get right). */
export function sealedRecord(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Date.now();
  return { n: "sid", i: generateUid(), d: { user: "mallory" }, e: now + 60_000, c: now, ...extra };
}

export const signer: CookieSigner = new CookieSigner(new Keyring([KEY]), "sid");
const otherSigner = new CookieSigner(new Keyring([OTHER_KEY]), "sid");

/** UTF-8 bytes as the latin1 string a server sees on the wire. */
export function wire(s: string): string {
  return Array.from(new TextEncoder().encode(s), (b) => String.fromCharCode(b)).join("");
}

export interface HostileCase {
  name: string;
  modes: readonly Mode[];
  /** The Cookie header (undefined: no header at all). */
  header(v: Valid): string | undefined | Promise<string | undefined>;
  /** The valid session must be found (a hostile part that must not disturb it). */
  session?: boolean;
  /** `onInvalid` reasons expected on each path (default: the same on every path). */
  reasons: readonly InvalidReason[] | ((path: Path, mode: Mode) => readonly InvalidReason[]);
}

/**
 * The socket handshake of store mode reads the client mapping and the record by id; a verified
 * but unknown id reports nothing (it simply finds no record), as in the core's `readCookies`.
 */
const unknownId = (path: Path, mode: Mode): readonly InvalidReason[] =>
  path === "socket.io" && mode === "store" ? [] : ["unknown-id"];
const both = ["store", "sealed"] as const;
const storeOnly = ["store"] as const;
const sealedOnly = ["sealed"] as const;
const invalid = (mode: Mode): InvalidReason => (mode === "store" ? "signature" : "sealed");

/** Every hostile header, by name. `v.sid` is the valid session cookie's value. */
export const HOSTILE: readonly HostileCase[] = [
  { name: "no Cookie header", modes: both, header: () => undefined, reasons: [] },
  { name: "empty Cookie header", modes: both, header: () => "", reasons: [] },
  {
    name: "empty session cookie (sid=)",
    modes: both,
    header: () => "sid=",
    reasons: ["malformed"],
  },
  { name: "nameless pair (=x)", modes: both, header: () => "=x", reasons: [] },
  {
    name: "nameless pair before the valid cookie (=x; sid=…)",
    modes: both,
    header: (v) => `=x; sid=${v.sid}`,
    session: true,
    reasons: [],
  },
  { name: "separators only (;;;)", modes: both, header: () => ";;;", reasons: [] },
  {
    name: "separators around the valid cookie (;;;sid=…;;;)",
    modes: both,
    header: (v) => `;;;sid=${v.sid};;;`,
    session: true,
    reasons: [],
  },
  {
    name: "NBSP before the name (\\u00a0sid=…) is another name",
    modes: both,
    header: (v) => `\u00a0sid=${v.sid}`,
    reasons: [],
  },
  {
    name: "non-ASCII name (UTF-8 sïd=…) is another name",
    modes: both,
    header: (v) => wire(`sïd=${v.sid}`),
    reasons: [],
  },
  {
    name: "non-ASCII cookies next to the valid one",
    modes: both,
    header: (v) => wire(`séance=ü€; sid=${v.sid}; 名前=値`),
    session: true,
    reasons: [],
  },
  {
    name: "duplicate names, invalid first: the first wins (no session)",
    modes: both,
    header: (v) => `sid=${flipBit(v.sid, 2)}; sid=${v.sid}`,
    reasons: (_p, mode) => [invalid(mode)],
  },
  {
    name: "duplicate names, valid first: the first wins (the session)",
    modes: both,
    header: (v) => `sid=${v.sid}; sid=${flipBit(v.sid, 2)}`,
    session: true,
    reasons: [],
  },
  {
    name: "__proto__ and constructor cookie names",
    modes: both,
    header: (v) => `__proto__=${v.sid}; constructor=${v.sid}; toString=x; hasOwnProperty=1`,
    reasons: [],
  },
  {
    name: "__proto__ and constructor cookie names next to the valid cookie",
    modes: both,
    header: (v) => `__proto__=polluted; constructor=x; sid=${v.sid}`,
    session: true,
    reasons: [],
  },
  {
    name: "truncated value (last character cut)",
    modes: both,
    header: (v) => `sid=${v.sid.slice(0, -1)}`,
    reasons: (_p, mode) => [invalid(mode)],
  },
  {
    name: "truncated value (first 10 characters)",
    modes: both,
    header: (v) => `sid=${v.sid.slice(0, 10)}`,
    reasons: (_p, mode) => [invalid(mode)],
  },
  {
    name: "padded value (base64 '=' padding appended)",
    modes: both,
    header: (v) => `sid=${v.sid}==`,
    reasons: (_p, mode) => [invalid(mode)],
  },
  {
    name: "padded value (a character appended)",
    modes: both,
    header: (v) => `sid=${v.sid}A`,
    reasons: (_p, mode) => [invalid(mode)],
  },
  {
    name: "quoted value",
    modes: both,
    header: (v) => `sid="${v.sid}"`,
    reasons: (_p, mode) => [invalid(mode)],
  },
  {
    name: "wrong part count (an extra part)",
    modes: both,
    header: (v) => `sid=${v.sid}${v.sid.startsWith("Fe26.2*") ? "*x" : ".x"}`,
    reasons: (_p, mode) => [invalid(mode)],
  },
  {
    name: "wrong part count (a part missing)",
    modes: both,
    header: (v) => {
      const sep = v.sid.startsWith("Fe26.2*") ? "*" : ".";
      return `sid=${v.sid.split(sep).slice(1).join(sep)}`;
    },
    reasons: (_p, mode) => [invalid(mode)],
  },
  {
    name: "bad base64url (standard base64 '+' and '/')",
    modes: both,
    header: (v) => `sid=${v.sid.slice(0, 8)}+/${v.sid.slice(10)}`,
    reasons: (_p, mode) => [invalid(mode)],
  },
  {
    name: "bad percent-encoding (%E0%A4%A)",
    modes: both,
    header: () => "sid=%E0%A4%A",
    reasons: (_p, mode) => [invalid(mode)],
  },
  {
    name: "one flipped bit in the id",
    modes: storeOnly,
    header: (v) => `sid=${flipBit(v.sid, 3)}`,
    reasons: ["signature"],
  },
  {
    name: "one flipped bit in the signature",
    modes: storeOnly,
    header: (v) => `sid=${flipBit(v.sid, -5)}`,
    reasons: ["signature"],
  },
  ...(["keyId", "salt", "iv", "ciphertext", "macSalt", "mac"] as const).map((part) => ({
    name: `one flipped bit in the sealed ${part === "mac" ? "tag (MAC)" : part}`,
    modes: sealedOnly,
    header: (v: Valid) => `sid=${flipIron(v.sid, part)}`,
    reasons: ["sealed"] as const,
  })),
  {
    name: "whitespace inside the sealed MAC (iron's base64 decoder would skip it)",
    modes: sealedOnly,
    header: (v: Valid) => {
      const parts = v.sid.split("*");
      parts[7] = "\t" + parts[7];
      return `sid=${parts.join("*")}`;
    },
    reasons: ["sealed"],
  },
  {
    name:
      "non-canonical base64url in the sealed MAC (a padding bit set: same bytes, other spelling)",
    modes: sealedOnly,
    header: (v: Valid) => {
      const parts = v.sid.split("*");
      const mac = parts[7]!;
      const last = B64URL.indexOf(mac.at(-1)!);
      parts[7] = mac.slice(0, -1) + B64URL[last ^ 1];
      return `sid=${parts.join("*")}`;
    },
    reasons: ["sealed"],
  },
  {
    name: "valid MAC over an id with no record (never issued: never adopted)",
    modes: storeOnly,
    header: () => `sid=${signer.sign(generateUid())}`,
    reasons: unknownId,
  },
  {
    name: "valid MAC over a non-id value (null)",
    modes: storeOnly,
    header: () => `sid=${signer.sign("null")}`,
    reasons: unknownId,
  },
  {
    name: "valid MAC over non-JSON",
    modes: sealedOnly,
    header: async (v) => `sid=${await sealWithRealKey({}, v.sid, () => "{not json")}`,
    reasons: ["sealed"],
  },
  {
    name: "valid MAC over invalid UTF-8",
    modes: sealedOnly,
    header: async (v) =>
      `sid=${await sealWithRealKey({}, v.sid, () => new Uint8Array([0xff, 0xfe, 0xc3, 0x28]))}`,
    reasons: ["sealed"],
  },
  {
    name: "valid MAC over null",
    modes: sealedOnly,
    header: async (v) => `sid=${await sealWithRealKey(null, v.sid)}`,
    reasons: ["sealed"],
  },
  {
    name: "valid MAC over an array",
    modes: sealedOnly,
    header: async (v) => `sid=${await sealWithRealKey([sealedRecord()], v.sid)}`,
    reasons: ["sealed"],
  },
  {
    name: "valid MAC over a record whose id is not an id",
    modes: sealedOnly,
    header: async (v) => `sid=${await sealWithRealKey(sealedRecord({ i: "../../x" }), v.sid)}`,
    reasons: ["sealed"],
  },
  {
    name: "valid MAC over a record with array data",
    modes: sealedOnly,
    header: async (v) => `sid=${await sealWithRealKey(sealedRecord({ d: [1] }), v.sid)}`,
    reasons: ["sealed"],
  },
  {
    name: "100 KB Cookie header (refused by length before any crypto)",
    modes: both,
    header: (v) => `sid=${v.sid}; pad=${"x".repeat(100 * 1024)}`,
    reasons: ["too-large"],
  },
  {
    name: "a valid value moved to another cookie name",
    modes: storeOnly,
    header: (v) => `sid=${v.cid}`,
    reasons: ["signature"],
  },
  {
    name: "a valid session value in the client-id cookie",
    modes: storeOnly,
    header: (v) => `sid.cid=${v.sid}`,
    reasons: ["client-signature"],
  },
  {
    name: "a value sealed for another cookie name",
    modes: sealedOnly,
    header: async (v) => `sid=${await sealWithRealKey(sealedRecord({ n: "admin.sid" }), v.sid)}`,
    reasons: ["sealed"],
  },
  {
    name: "wrong key",
    modes: storeOnly,
    header: (v) => `sid=${otherSigner.sign(v.sessionId)}`,
    reasons: ["signature"],
  },
  {
    name: "wrong key (sealed)",
    modes: sealedOnly,
    header: async (v) =>
      `sid=${await seal(sealedRecord({ i: v.sessionId }), {
        id: v.sid.split("*")[1]!,
        secret: OTHER_KEY,
      }, defaults)}`,
    reasons: ["sealed"],
  },
];

/** The reasons a case expects on a path. */
export function expectedReasons(c: HostileCase, path: Path, mode: Mode): readonly InvalidReason[] {
  return typeof c.reasons === "function" ? c.reasons(path, mode) : c.reasons;
}
