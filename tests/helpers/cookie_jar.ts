/**
 * A tiny browser-like cookie jar for driving `app.request()` in tests: it applies a response's
 * `Set-Cookie` headers (a `Max-Age` ≤ 0 or an `Expires` in the past deletes the cookie) and
 * produces the next request's `Cookie` header. Domain, path and `Secure` are ignored on purpose:
 * every test request goes to one origin over plain `http://localhost`.
 * @module
 */

/** One parsed `Set-Cookie` header. */
export interface SetCookie {
  name: string;
  value: string;
  /** Attributes by lower-cased name; flags (HttpOnly, Secure, ...) map to `true`. */
  attributes: Record<string, string | true>;
}

/** Parses one `Set-Cookie` header value. */
export function parseSetCookie(header: string): SetCookie {
  const [pair = "", ...attrs] = header.split(";");
  const eq = pair.indexOf("=");
  const name = (eq < 0 ? pair : pair.slice(0, eq)).trim();
  const value = eq < 0 ? "" : pair.slice(eq + 1).trim();
  const attributes: Record<string, string | true> = {};
  for (const attr of attrs) {
    const i = attr.indexOf("=");
    const key = (i < 0 ? attr : attr.slice(0, i)).trim().toLowerCase();
    if (key) attributes[key] = i < 0 ? true : attr.slice(i + 1).trim();
  }
  return { name, value, attributes };
}

/** True when a parsed `Set-Cookie` deletes its cookie. */
export function isDeletion(c: SetCookie, now: number = Date.now()): boolean {
  const maxAge = c.attributes["max-age"];
  if (typeof maxAge === "string") return Number(maxAge) <= 0;
  const expires = c.attributes["expires"];
  return typeof expires === "string" && Date.parse(expires) <= now;
}

/** Something with Hono's `app.request(path, init)`. */
export interface Requestable {
  request(path: string, init?: RequestInit): Response | Promise<Response>;
}

/** A cookie jar: name → value, in insertion order. */
export class CookieJar {
  readonly #cookies = new Map<string, string>();

  /** Applies every `Set-Cookie` of `res`; returns them parsed, in order. */
  apply(res: Response): SetCookie[] {
    const parsed = res.headers.getSetCookie().map(parseSetCookie);
    for (const c of parsed) {
      if (isDeletion(c)) this.#cookies.delete(c.name);
      else this.#cookies.set(c.name, c.value);
    }
    return parsed;
  }

  /** The `Cookie` header to send next, or undefined when the jar is empty. */
  header(): string | undefined {
    if (this.#cookies.size === 0) return undefined;
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  get(name: string): string | undefined {
    return this.#cookies.get(name);
  }

  set(name: string, value: string): this {
    this.#cookies.set(name, value);
    return this;
  }

  delete(name: string): this {
    this.#cookies.delete(name);
    return this;
  }

  has(name: string): boolean {
    return this.#cookies.has(name);
  }

  /** An independent copy (a second browser holding the same cookies). */
  clone(): CookieJar {
    const copy = new CookieJar();
    for (const [k, v] of this.#cookies) copy.set(k, v);
    return copy;
  }

  /** `init` with this jar's `Cookie` header added (an explicit `cookie` header wins). */
  init(init: RequestInit = {}): RequestInit {
    const headers = new Headers(init.headers);
    const cookie = this.header();
    if (cookie !== undefined && !headers.has("cookie")) headers.set("cookie", cookie);
    return { ...init, headers };
  }
}

/** A response plus the `Set-Cookie` headers it carried, parsed. */
export interface JarResponse {
  res: Response;
  status: number;
  body: string;
  setCookies: SetCookie[];
}

/**
 * A client that sends the jar's cookies with every request and applies the responses'
 * `Set-Cookie` headers, like a browser.
 */
export class Client {
  readonly app: Requestable;
  readonly jar: CookieJar;

  constructor(app: Requestable, jar: CookieJar = new CookieJar()) {
    this.app = app;
    this.jar = jar;
  }

  /** Sends a request; the body is read as text. */
  async fetch(path: string, init?: RequestInit): Promise<JarResponse> {
    const res = await this.app.request(path, this.jar.init(init));
    const setCookies = this.jar.apply(res);
    const body = await res.text();
    return { res, status: res.status, body, setCookies };
  }

  get(path: string, init?: RequestInit): Promise<JarResponse> {
    return this.fetch(path, { ...init, method: "GET" });
  }

  post(path: string, init?: RequestInit): Promise<JarResponse> {
    return this.fetch(path, { ...init, method: "POST" });
  }
}
