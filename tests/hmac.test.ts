// HMAC-SHA-256 of signed cookies (src/hmac.ts): RFC 4231's known answers, and agreement with
// crypto.subtle for random keys and messages of every length around the block boundaries.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { HmacSha256 } from "../src/hmac.ts";
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

describe("HMAC-SHA-256 (signed cookies)", () => {
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
});
