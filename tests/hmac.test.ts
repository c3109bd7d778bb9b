// HMAC-SHA-256 of signed cookies (src/hmac.ts): RFC 4231's known answers, and agreement with
// crypto.subtle for random keys and messages of every length around the block boundaries.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  hmacFromNodeCrypto,
  HmacSha256 as Base,
  type NativeHmac,
  nativeHmac,
} from "../src/hmac.ts";
import { encodeBase64Url, utf8 } from "../src/encoding.ts";

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));
}

function b64urlOfHex(s: string): string {
  return encodeBase64Url(hex(s));
}

async function subtleMac(key: Uint8Array, message: Uint8Array): Promise<string> {
  const k = await crypto.subtle.importKey(
    "raw",
    new Uint8Array(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    [
      "sign",
    ],
  );
  return encodeBase64Url(
    new Uint8Array(await crypto.subtle.sign("HMAC", k, new Uint8Array(message))),
  );
}

/** A string of `n` random characters: ASCII, or with some 2-, 3- and 4-byte UTF-8 ones. */
function randomText(n: number, ascii: boolean): string {
  const pool = [...(ascii ? "abcXYZ019=._-~ !" : "aé€😀ñ=")];
  let s = "";
  for (let i = 0; i < n; i++) s += pool[Math.floor(Math.random() * pool.length)];
  return s;
}

/** The implementations to check: the JS one everywhere, and the runtime's native one (Bun's). */
const IMPLEMENTATIONS: [string, NativeHmac | null][] = [["JS", null]];
const native = nativeHmac();
if (native) IMPLEMENTATIONS.push(["native", native]);

for (const [name, impl] of IMPLEMENTATIONS) {
  describe(`HMAC-SHA-256 (signed cookies), ${name}`, () => {
    tests(impl);
  });
}

function tests(impl: NativeHmac | null): void {
  class HmacSha256 extends Base {
    constructor(key: Uint8Array) {
      super(key, impl);
    }
  }

  test("RFC 4231 test cases 1, 2, 6 and 7 (ASCII data; keys of 4 to 131 bytes)", () => {
    const cases: [Uint8Array, Uint8Array, string][] = [
      [
        new Uint8Array(20).fill(0x0b),
        utf8("Hi There"),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
      ],
      [
        utf8("Jefe"),
        utf8("what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
      ],
      [
        new Uint8Array(131).fill(0xaa),
        utf8("Test Using Larger Than Block-Size Key - Hash Key First"),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
      ],
      [
        new Uint8Array(131).fill(0xaa),
        utf8(
          "This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
        ),
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
      ],
    ];
    for (const [key, data, expected] of cases) {
      const message = new TextDecoder().decode(data);
      assert.equal(new HmacSha256(key).base64Url(message), b64urlOfHex(expected));
    }
  });

  test("agrees with crypto.subtle for 600 random keys and messages (0-200 chars, UTF-8)", async () => {
    for (let i = 0; i < 600; i++) {
      const keyLength = [1, 20, 32, 63, 64, 65, 100, 200][i % 8]!;
      const key = crypto.getRandomValues(new Uint8Array(keyLength));
      const message = randomText(i % 201, i % 3 !== 0);
      const mac = new HmacSha256(key);
      const expected = await subtleMac(key, utf8(message));
      assert.equal(mac.base64Url(message), expected, `key ${keyLength} B, message ${message}`);
      // A second call on the same instance starts from clean state.
      assert.equal(mac.base64Url(message), expected);
    }
  });

  test("short ASCII messages (one block) and the messages around them agree with crypto.subtle", async () => {
    const key = utf8("a-secret-of-at-least-32-characters!!");
    const mac = new HmacSha256(key);
    // 55 ASCII bytes fit one block with the padding, 56 do not; "é" is 2 bytes, "😀" 4 (surrogates).
    const messages = ["", "a", "sid=" + "x".repeat(51), "sid=" + "x".repeat(52), "x".repeat(54)];
    messages.push("sid=é" + "x".repeat(40), "😀", "sid=abc", "x".repeat(53) + "é", "sid.cid=abc");
    for (const message of messages) {
      assert.equal(mac.base64Url(message), await subtleMac(key, utf8(message)), message);
    }
    // A short non-ASCII message leaves the schedule half written: the next one is still right.
    for (const message of ["€uro", "sid=abc", "x".repeat(55), "sid=abd"]) {
      assert.equal(mac.base64Url(message), await subtleMac(key, utf8(message)), message);
    }
  });

  test("one instance gives each message its own MAC, after a long one too", async () => {
    const key = utf8("a-secret-of-at-least-32-characters!!");
    const mac = new HmacSha256(key);
    const long = "x".repeat(1000);
    assert.equal(mac.base64Url(long), await subtleMac(key, utf8(long)));
    assert.equal(mac.base64Url("sid=abc"), await subtleMac(key, utf8("sid=abc")));
    assert.equal(mac.base64Url(""), await subtleMac(key, new Uint8Array(0)));
  });
}

describe("the native HMAC (node:crypto's createHmac, on Bun)", () => {
  test("is used on Bun, and only there", () => {
    assert.equal(typeof nativeHmac(), "Bun" in globalThis ? "function" : "undefined");
  });

  test("is refused unless it gives RFC 4231's answers and the JS MAC of UTF-8 text", () => {
    const js = (key: Uint8Array, message: string) => new Base(key, null).base64Url(message);
    /** A fake node:crypto whose createHmac MACs with `mac(key, message)`. */
    const fakeNodeCrypto = (mac: (key: Uint8Array, message: string) => string) => ({
      createSecretKey: (key: Uint8Array) => key,
      createHmac: (_algorithm: string, key: Uint8Array) => {
        let message = "";
        const hmac = {
          update(data: string) {
            message += data;
            return hmac;
          },
          digest: () => mac(key, message),
        };
        return hmac;
      },
    });
    assert.equal(hmacFromNodeCrypto(undefined), undefined);
    assert.equal(hmacFromNodeCrypto({}), undefined, "no createHmac");
    assert.equal(
      hmacFromNodeCrypto({ createHmac: fakeNodeCrypto(js).createHmac }),
      undefined,
      "no createSecretKey",
    );
    assert.equal(hmacFromNodeCrypto(fakeNodeCrypto(() => "")), undefined, "wrong answers");
    assert.equal(
      hmacFromNodeCrypto(fakeNodeCrypto((_key, message) => js(new Uint8Array(0), message))),
      undefined,
      "the key ignored",
    );
    assert.equal(
      hmacFromNodeCrypto(fakeNodeCrypto(() => {
        throw new Error("unsupported");
      })),
      undefined,
      "a throwing hasher",
    );
    // Right for ASCII only (another encoding for the rest): refused too.
    const asciiOnly = (key: Uint8Array, message: string) =>
      js(key, message.replace(/[^ -~]/g, "?"));
    assert.equal(hmacFromNodeCrypto(fakeNodeCrypto(asciiOnly)), undefined, "not UTF-8");
    const right = hmacFromNodeCrypto(fakeNodeCrypto(js));
    assert.equal(typeof right, "function", "a right one is taken");
    const key = utf8("a-secret-of-at-least-32-characters!!");
    assert.equal(right!(key)("sid=abc"), js(key, "sid=abc"));
  });
});
