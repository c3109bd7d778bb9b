// iron seals: unisession's own sealing (src/iron.ts) against iron-webcrypto in both directions,
// and the refusals (tampering, wrong key, expiry, non-canonical spellings).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { defaults, seal as ironWebSeal, unseal as ironWebUnseal } from "iron-webcrypto";
import { hmac } from "@noble/hashes/hmac.js";
import { sha1 } from "@noble/hashes/legacy.js";
import { pbkdf2 } from "@noble/hashes/pbkdf2.js";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  type AesCbc,
  aesFromNodeCrypto,
  type IronKey,
  ironSeal,
  ironUnseal,
  nodeCryptoAes as findNodeCryptoAes,
  SALT_LIFETIME_MS,
  SEALS_PER_SALT,
  webCryptoAes,
} from "../src/iron.ts";
import { Sealer } from "../src/sealer.ts";
import { encodeBase64Url, utf8 } from "../src/encoding.ts";

const SECRET = "a-secret-of-at-least-32-characters!!";
const OTHER = "another-secret-of-at-least-32-chars!!";
const key: IronKey = { id: "k1", secret: utf8(SECRET) };
const ring = new Map([["k1", key]]);

const VALUES: unknown[] = [
  {},
  { n: 1, s: "x" },
  { deep: { list: [1, "two", null, true, { three: 3 }] } },
  { text: 'é ☃ 😀 \u2028 " \\ *', empty: "" },
  { big: "x".repeat(3000) },
  [1, 2, 3],
  "a string",
  42,
  null,
];

/** `seal` with its ciphertext replaced by `encrypted` and a MAC made for that (as a key holder). */
function remac(seal: string, encrypted: Uint8Array): string {
  const parts = seal.split("*");
  parts[4] = encodeBase64Url(encrypted);
  const macKey = pbkdf2(sha1, utf8(SECRET), utf8(parts[6]!), { c: 1, dkLen: 32 });
  parts[7] = encodeBase64Url(hmac(sha256, macKey, utf8(parts.slice(0, 6).join("*"))));
  return parts.join("*");
}

/** The runtime's node:crypto AES, if it has a working one. */
const nodeCryptoAes = findNodeCryptoAes();

/** Both AES implementations: each must interoperate with iron-webcrypto and with the other. */
const BACKENDS: [string, AesCbc][] = [["Web Crypto", webCryptoAes]];
if (nodeCryptoAes) BACKENDS.push(["node:crypto", nodeCryptoAes]);

describe("iron seals", () => {
  test("AES runs through node:crypto where the runtime offers it (found without an import)", () => {
    // Node from 20.16, Deno 2 and Bun have process.getBuiltinModule; older Node uses Web Crypto.
    const p = (globalThis as { process?: { getBuiltinModule?: unknown } }).process;
    assert.equal(nodeCryptoAes !== undefined, typeof p?.getBuiltinModule === "function");
  });

  test("a node:crypto whose AES is missing, throws or does not encrypt is not used", () => {
    const cipher = (update: (d: Uint8Array) => Uint8Array) => () => ({
      update,
      final: () => new Uint8Array(0),
    });
    const fake = (createCipheriv: unknown, createDecipheriv: unknown = createCipheriv) => ({
      createSecretKey: (raw: Uint8Array) => raw,
      createCipheriv,
      createDecipheriv,
    });
    assert.equal(aesFromNodeCrypto(undefined), undefined);
    assert.equal(aesFromNodeCrypto({}), undefined);
    assert.equal(aesFromNodeCrypto({ createSecretKey() {}, createCipheriv() {} }), undefined);
    const unsupported = () => {
      throw new Error("ERR_FEATURE_UNAVAILABLE_ON_PLATFORM");
    };
    assert.equal(aesFromNodeCrypto(fake(unsupported)), undefined, "throws");
    assert.equal(aesFromNodeCrypto(fake(cipher((d) => d))), undefined, "copies instead");
    // PKCS#7 padding and nothing else: a round trip works, the ciphertext is the plaintext.
    const pad = () => {
      let input: Uint8Array = new Uint8Array(0);
      return {
        update: (d: Uint8Array) => ((input = d), new Uint8Array(0)),
        final: () => {
          const n = 16 - (input.length % 16);
          return Uint8Array.from([...input, ...new Array(n).fill(n)]);
        },
      };
    };
    const unpad = () => {
      let input: Uint8Array = new Uint8Array(0);
      return {
        update: (d: Uint8Array) => ((input = d), new Uint8Array(0)),
        final: () => input.slice(0, input.length - input[input.length - 1]!),
      };
    };
    assert.equal(aesFromNodeCrypto(fake(pad, unpad)), undefined, "pads without encrypting");
    const real = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } })
      .process?.getBuiltinModule?.("node:crypto");
    assert.ok(aesFromNodeCrypto(real), "the runtime's own works");
  });

  for (const [name, aes] of BACKENDS) {
    test(`${name}: what unisession seals, iron-webcrypto unseals`, async () => {
      for (const value of VALUES) {
        const sealed = await ironSeal(JSON.stringify(value), key, Date.now(), aes);
        assert.match(sealed, /^Fe26\.2\*k1\*[0-9a-f]{64}\*[\w-]+\*[\w-]+\*\*[0-9a-f]{64}\*[\w-]+$/);
        assert.deepEqual(await ironWebUnseal(sealed, { k1: SECRET }, defaults), value);
      }
    });

    test(`${name}: what iron-webcrypto seals, unisession unseals`, async () => {
      for (const value of VALUES) {
        const sealed = await ironWebSeal(value, { id: "k1", secret: SECRET }, defaults);
        const json = await ironUnseal(sealed, ring, Date.now(), aes);
        assert.ok(json !== undefined, `unsealed ${JSON.stringify(value).slice(0, 40)}`);
        assert.deepEqual(JSON.parse(json), value);
      }
    });

    test(`${name}: a seal with a valid MAC over a ciphertext that does not decrypt is refused`, async () => {
      // Only a key holder can make this: the MAC verifies, AES then fails.
      const k: IronKey = { id: "k1", secret: utf8(SECRET) };
      const seal = await ironSeal('{"a":1}', k, Date.now(), aes);
      const forged = remac(seal, new Uint8Array(15)); // not a whole block: never decrypts
      assert.equal(await ironUnseal(forged, new Map([["k1", k]]), Date.now(), aes), undefined);
    });
  }

  test("both AES implementations answer the same for ciphertexts with a valid MAC", async () => {
    if (!nodeCryptoAes) return assert.fail("node:crypto is missing");
    const k: IronKey = { id: "k1", secret: utf8(SECRET) };
    const seal = await ironSeal('{"a":1}', k, Date.now(), webCryptoAes);
    const keys = new Map([["k1", k]]);
    let refused = 0;
    for (let i = 0; i < 300; i++) {
      // Random blocks decrypt to valid padding about once in 256: then both give the same text.
      const forged = remac(seal, crypto.getRandomValues(new Uint8Array(16 * (1 + (i % 3)))));
      const web = await ironUnseal(forged, keys, Date.now(), webCryptoAes);
      assert.equal(await ironUnseal(forged, keys, Date.now(), nodeCryptoAes), web, `${i}`);
      if (web === undefined) refused++;
    }
    assert.ok(refused > 250, `most random ciphertexts are refused (${refused} of 300)`);
  });

  test("seals of one AES implementation open with the other", async () => {
    if (!nodeCryptoAes) return assert.fail("node:crypto is missing");
    for (const value of VALUES) {
      const json = JSON.stringify(value);
      const a = await ironSeal(json, key, Date.now(), nodeCryptoAes);
      assert.equal(await ironUnseal(a, ring, Date.now(), webCryptoAes), json);
      const b = await ironSeal(json, key, Date.now(), webCryptoAes);
      assert.equal(await ironUnseal(b, ring, Date.now(), nodeCryptoAes), json);
    }
  });

  test("each seal has its own IV and ciphertext; the salts are renewed by count and by time", async () => {
    const k: IronKey = { id: "rot", secret: utf8(SECRET) }; // a key object of its own: fresh salts
    const t = 1_800_000_000_000;
    const parts = async (now: number) => (await ironSeal("{}", k, now)).split("*");
    const first = await parts(t);
    const second = await parts(t + 1);
    for (const i of [3, 4, 7]) {
      assert.notEqual(first[i], second[i], `IV, ciphertext, MAC: part ${i}`);
    }
    assert.deepEqual([second[2], second[6]], [first[2], first[6]], "same salts meanwhile");
    const later = await parts(t + SALT_LIFETIME_MS);
    assert.notEqual(later[2], first[2], "new encryption salt after SALT_LIFETIME_MS");
    assert.notEqual(later[6], first[6], "new MAC salt after SALT_LIFETIME_MS");
    // By count: SEALS_PER_SALT seals per pair of salts.
    const salts = new Set<string>();
    const opened: string[] = [];
    for (let i = 0; i < SEALS_PER_SALT; i++) {
      const sealed = await ironSeal(`{"i":${i}}`, k, t + SALT_LIFETIME_MS);
      salts.add(sealed.split("*")[2]!);
      if (i === 0 || i === SEALS_PER_SALT - 1) opened.push(sealed);
    }
    assert.equal(salts.size, 2, "the pair from `later` ran out and one new pair followed");
    // Seals of every salt pair still open, here and with iron-webcrypto.
    for (const sealed of opened) {
      const ring = new Map([[k.id, k]]);
      assert.match((await ironUnseal(sealed, ring))!, /^\{"i":\d+\}$/);
      assert.match(
        JSON.stringify(await ironWebUnseal(sealed, { [k.id]: SECRET }, defaults)),
        /^\{"i":\d+\}$/,
      );
    }
  });

  test("a changed character anywhere, a wrong key or a wrong shape is refused", async () => {
    const sealed = await ironSeal(JSON.stringify({ user: "ada" }), key);
    for (let i = 0; i < sealed.length; i++) {
      const c = sealed[i]!;
      if (c === "*") continue;
      const swapped = c === "A" ? "B" : c === "0" ? "1" : "A";
      const forged = sealed.slice(0, i) + swapped + sealed.slice(i + 1);
      assert.equal(await ironUnseal(forged, ring), undefined, `position ${i}`);
    }
    const parts = sealed.split("*");
    const other = new Map([["k1", { id: "k1", secret: utf8(OTHER) }]]);
    assert.equal(await ironUnseal(sealed, other), undefined, "same id, other secret");
    assert.equal(await ironUnseal(sealed, new Map()), undefined, "unknown id");
    assert.equal(await ironUnseal(parts.slice(0, 7).join("*"), ring), undefined, "7 parts");
    assert.equal(await ironUnseal(sealed + "*x", ring), undefined, "9 parts");
    assert.equal(await ironUnseal(sealed.replace("Fe26.2", "Fe26.1"), ring), undefined);
    assert.equal(await ironUnseal("", ring), undefined);
    // A MAC with a stray trailing bit decodes to the same bytes elsewhere; here it is refused.
    const mac = parts[7]!;
    const last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const bumped = last[(last.indexOf(mac.at(-1)!) + 1) % 64];
    assert.equal(
      await ironUnseal([...parts.slice(0, 7), mac.slice(0, -1) + bumped].join("*"), ring),
      undefined,
    );
    assert.equal(
      await ironUnseal(sealed, ring),
      JSON.stringify({ user: "ada" }),
      "the original still opens",
    );
  });

  test("a seal with an expiration opens until it (plus iron's 60 s skew) has passed", async () => {
    const sealed = await ironWebSeal({ a: 1 }, { id: "k1", secret: SECRET }, {
      ...defaults,
      ttl: 1000,
    });
    const expiry = Number(sealed.split("*")[5]);
    assert.equal(await ironUnseal(sealed, ring, expiry + 59_000), '{"a":1}');
    assert.equal(await ironUnseal(sealed, ring, expiry + 60_000), undefined);
  });
});

describe("Sealer", () => {
  test("seals with the first key, unseals with any key of the ring, flags the older ones stale", async () => {
    const old = new Sealer([OTHER]);
    const rotated = new Sealer([SECRET, OTHER]);
    const before = await old.seal({ v: "old" });
    assert.deepEqual(await rotated.unseal(before), { value: { v: "old" }, stale: true });
    const now = await rotated.seal({ v: "new" });
    assert.deepEqual(await rotated.unseal(now), { value: { v: "new" }, stale: false });
    assert.equal(await old.unseal(now), undefined, "a retired key does not open new seals");
  });

  test("a repeated cookie is answered from memory, each time as a fresh copy", async () => {
    const sealer = new Sealer([SECRET]);
    const sealed = await sealer.seal({ list: [1] });
    const first = (await sealer.unseal(sealed))!.value as { list: number[] };
    first.list.push(2);
    assert.deepEqual((await sealer.unseal(sealed))!.value, { list: [1] });
    // What was sealed, changed afterwards, and values JSON changes: the memory answers as the
    // cookie would.
    const value = { o: { k: "v" }, at: new Date(0), nan: NaN };
    const other = await sealer.seal(value);
    value.o.k = "changed after seal";
    const json = { o: { k: "v" }, at: "1970-01-01T00:00:00.000Z", nan: null };
    assert.deepEqual((await sealer.unseal(other))!.value, json);
    // A cookie opened by decryption (another sealer's memory is empty), changed by its reader.
    const fresh = new Sealer([SECRET]);
    const opened = (await fresh.unseal(other))!.value as typeof json;
    opened.o.k = "changed by the reader";
    assert.deepEqual((await fresh.unseal(other))!.value, json);
  });

  test("values without a JSON form are rejected with an error, not sealed", async () => {
    const sealer = new Sealer([SECRET]);
    await assert.rejects(sealer.seal(undefined), TypeError);
    await assert.rejects(sealer.seal(() => 1), TypeError);
    await assert.rejects(sealer.seal({ n: 1n }), TypeError);
  });

  test("anything that is not a seal of ours is no session, never an exception", async () => {
    const sealer = new Sealer([SECRET]);
    const foreign = await ironWebSeal("not ours", { id: "zz", secret: OTHER }, defaults);
    for (
      const input of [
        undefined,
        "",
        "x",
        "Fe26.2",
        "Fe26.2*a b*",
        "Fe26.2" + "*".repeat(7),
        foreign,
        "F".repeat(5000),
      ]
    ) {
      assert.equal(await sealer.unseal(input), undefined, String(input).slice(0, 20));
    }
  });
});
