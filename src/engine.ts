/**
 * Which JavaScript engine runs this code, for the few choices that are a matter of speed only
 * (never of behaviour): a runtime-neutral check, no runtime module imported.
 * @module
 */

/** True on JavaScriptCore (Bun), whose costs differ from V8's (Node, Deno) where noted. */
export const JAVASCRIPTCORE: boolean = "Bun" in globalThis;
