/**
 * Property-based fuzzing (fast-check) of the three decoders that read attacker-controlled bytes:
 * the Cookie header parser, the signed-id codec and the sealed (iron) codec, each also through
 * `manager.open` (+ `prepare`). Every property fails on the first input that throws or is
 * accepted although it is not a value the server issued ("false accept").
 *
 * `npm run fuzz` runs each 100,000 times (fuzz/run.ts); tests/security_fuzz.test.ts runs a few
 * hundred on every `npm test`.
 * @module
 */
import fc from "fast-check";
import { createSessions, MapStore, type SessionManager } from "../mod.ts";
import { cookieValue, MAX_COOKIE_HEADER } from "../src/cookie.ts";
import { CookieSigner, Keyring } from "../src/signer.ts";
import { Sealer } from "../src/sealer.ts";
import { generateUid } from "../src/id.ts";

const KEY = "the-fuzzing-key-of-at-least-32-characters";
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** What one property saw. */
export interface FuzzStats {
  /** Inputs tried. */
  runs: number;
  /** Inputs that made the code under test throw or reject (must stay 0). */
  throws: number;
  /** Inputs accepted although not issued by the server (must stay 0). */
  falseAccepts: number;
  /** Issued values accepted (the control: the codec does accept what it should). */
  trueAccepts: number;
}

/** A named property and its counters. */
export interface FuzzTarget {
  name: string;
  stats: FuzzStats;
  /** Runs the property `numRuns` times; rejects with fast-check's report on a failure. */
  run(numRuns: number, seed?: number): Promise<void>;
}

function newStats(): FuzzStats {
  return { runs: 0, throws: 0, falseAccepts: 0, trueAccepts: 0 };
}

/** Character-level mutations of `valid`: replace, insert, delete, truncate, append, duplicate. */
function mutations(valid: string, alphabet: string): fc.Arbitrary<string> {
  const at = fc.nat({ max: valid.length - 1 });
  const ch = fc.oneof(
    fc.constantFrom(...alphabet.split("")),
    fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
  );
  return fc.oneof(
    fc.tuple(at, ch).map(([i, c]) => valid.slice(0, i) + c + valid.slice(i + 1)),
    fc.tuple(at, ch).map(([i, c]) => valid.slice(0, i) + c + valid.slice(i)),
    at.map((i) => valid.slice(0, i) + valid.slice(i + 1)),
    at.map((i) => valid.slice(0, i)),
    fc.string({ minLength: 1, maxLength: 8 }).map((s) => valid + s),
    fc.tuple(at, at).map(([i, j]) => valid.slice(0, i) + valid.slice(j)),
    fc.constant(valid + valid),
  );
}

/** The one session id the cookie-parser target's store knows, and its signed cookie value. */
const KNOWN_ID = generateUid();
const KNOWN_SID = new CookieSigner(new Keyring([KEY]), "sid").sign(KNOWN_ID);

/** One `name=value<separator>` with hostile names, values and separators. */
const cookiePair: fc.Arbitrary<[string, string, string]> = fc.tuple(
  fc.oneof(
    fc.constantFrom("sid", "sid.cid", "__proto__", "constructor", "toString", "", " sid"),
    fc.string({ unit: "binary", maxLength: 12 }),
  ),
  fc.oneof(
    fc.string({ unit: "binary", maxLength: 60 }),
    fc.stringMatching(/^[A-Za-z0-9_-]{20,30}\.[A-Za-z0-9_-]{43}$/),
    fc.constantFrom('"', '""', "%", "%E0%A4%A", "=", ";", KNOWN_SID),
  ),
  fc.constantFrom("; ", ";", ";;", " ; ", ",", "\t;"),
);
const cookiePairs = fc.array(cookiePair, { maxLength: 8 });
const join = (pairs: [string, string, string][]): string =>
  pairs.map(([n, v, sep]) => `${n}=${v}${sep}`).join("");

/** Cookie-header-like strings: pairs with hostile names and values and odd separators. */
const cookieHeaders: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: "binary", maxLength: 300 }),
  cookiePairs.map(join),
  // The issued cookie somewhere among hostile pairs (the first "sid" must win).
  fc.tuple(cookiePairs, fc.nat({ max: 8 })).map(([pairs, at]) => {
    const withValid = [...pairs];
    withValid.splice(Math.min(at, pairs.length), 0, ["sid", KNOWN_SID, "; "]);
    return join(withValid);
  }),
  fc.nat({ max: 2000 }).map((n) => "sid=" + "x".repeat(MAX_COOKIE_HEADER - 4 + n)),
);

/** The Cookie header parser (and `manager.open` on a store with no records). */
function cookieParser(): FuzzTarget {
  const stats = newStats();
  const manager: SessionManager = createSessions({
    store: new MapStore(),
    keys: [KEY],
    logger: { warn() {} },
  });
  const protoKeys = Object.getOwnPropertyNames(Object.prototype).join();
  const property = fc.property(cookieHeaders, (header) => {
    stats.runs++;
    let sid: string | undefined;
    let id: string | undefined;
    try {
      sid = cookieValue(header, "sid");
      id = manager.open(header).id;
    } catch {
      stats.throws++;
      return false;
    }
    // Only the issued cookie, as the first "sid", yields the session id.
    if (id !== undefined) {
      if (sid !== KNOWN_SID || id !== KNOWN_ID) {
        stats.falseAccepts++;
        return false;
      }
      stats.trueAccepts++;
    } else if (sid === KNOWN_SID) return false;
    // The first of duplicate names wins (checked where name and value are plain tokens).
    const first = new Map<string, string>();
    for (const pair of header.split(";")) {
      const eq = pair.indexOf("=");
      if (eq < 0) continue;
      const name = pair.slice(0, eq).replace(/^[ \t]+|[ \t]+$/g, "");
      if (!first.has(name)) first.set(name, pair.slice(eq + 1).replace(/^[ \t]+|[ \t]+$/g, ""));
    }
    for (const [name, value] of first) {
      const plain = /^[A-Za-z0-9_.-]+$/.test(name) && /^[A-Za-z0-9_.-]*$/.test(value);
      if (plain && header.length <= MAX_COOKIE_HEADER) {
        if (cookieValue(header, name) !== value) return false;
      }
    }
    return Object.getOwnPropertyNames(Object.prototype).join() === protoKeys;
  });
  return {
    name: "cookie parser (cookieValue + manager.open)",
    stats,
    run: async (numRuns, seed) => {
      await Promise.resolve();
      fc.assert(property, { numRuns, seed });
    },
  };
}

/** The signed-id codec: random strings and mutations of issued values never verify. */
function signedIds(): FuzzTarget {
  const stats = newStats();
  const signer = new CookieSigner(
    new Keyring([KEY, "an-older-key-of-at-least-32-characters"]),
    "sid",
    0,
  );
  const issued = Array.from({ length: 8 }, () => signer.sign(generateUid()));
  const issuedSet = new Set(issued);
  const inputs = fc.oneof(
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 400 }) },
    {
      weight: 1,
      arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,40}\.[A-Za-z0-9_-]{43}$/),
    },
    { weight: 4, arbitrary: fc.constantFrom(...issued).chain((v) => mutations(v, B64URL)) },
    { weight: 1, arbitrary: fc.constantFrom(...issued) },
  );
  const property = fc.property(inputs, (raw) => {
    stats.runs++;
    let result: { value: string } | undefined;
    try {
      result = signer.verify(raw);
    } catch {
      stats.throws++;
      return false;
    }
    if (result === undefined) return !issuedSet.has(raw);
    if (!issuedSet.has(raw)) {
      stats.falseAccepts++;
      return false;
    }
    stats.trueAccepts++;
    return raw.startsWith(result.value + ".");
  });
  return {
    name: "signed-id codec (CookieSigner.verify)",
    stats,
    run: async (numRuns, seed) => {
      await Promise.resolve();
      fc.assert(property, { numRuns, seed });
    },
  };
}

/** The sealed codec (iron): random strings and mutations of sealed values never unseal. */
async function sealedValues(): Promise<FuzzTarget> {
  const stats = newStats();
  const sealer = new Sealer([KEY]);
  const issued = await Promise.all(
    Array.from({ length: 4 }, (_, i) => sealer.seal({ n: "sid", i: generateUid(), d: { i } })),
  );
  const issuedSet = new Set(issued);
  const payloads = new Map<string, string>();
  for (const v of issued) payloads.set(v, JSON.stringify((await sealer.unseal(v))!.value));
  const manager = createSessions({ keys: [KEY], logger: { warn() {} } });
  const ironAlphabet = B64URL + "*~";
  const inputs = fc.oneof(
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 300 }) },
    {
      weight: 1,
      arbitrary: fc.array(fc.stringMatching(/^[A-Za-z0-9_-]{0,30}$/), {
        minLength: 6,
        maxLength: 10,
      }).map((parts) => "Fe26.2*" + parts.join("*")),
    },
    {
      weight: 4,
      arbitrary: fc.constantFrom(...issued).chain((v) => mutations(v, ironAlphabet)),
    },
    { weight: 1, arbitrary: fc.constantFrom(...issued) },
  );
  const property = fc.asyncProperty(inputs, async (raw) => {
    stats.runs++;
    let result: { value: unknown } | undefined;
    let sessionFound: boolean;
    try {
      result = await sealer.unseal(raw);
      const state = manager.open(`sid=${raw}`);
      await manager.prepare(state);
      sessionFound = state.id !== undefined;
    } catch {
      stats.throws++;
      return false;
    }
    if (sessionFound) {
      stats.falseAccepts++; // nothing here is a full session record sealed by the manager
      return false;
    }
    if (result === undefined) return !issuedSet.has(raw);
    if (!issuedSet.has(raw)) {
      stats.falseAccepts++;
      return false;
    }
    stats.trueAccepts++;
    return JSON.stringify(result.value) === payloads.get(raw);
  });
  return {
    name: "sealed codec (Sealer.unseal + manager.open/prepare)",
    stats,
    run: (numRuns, seed) => fc.assert(property, { numRuns, seed }),
  };
}

/** The three fuzz targets. */
export async function fuzzTargets(): Promise<FuzzTarget[]> {
  return [cookieParser(), signedIds(), await sealedValues()];
}
