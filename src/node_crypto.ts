/**
 * The runtime's `node:crypto`, for the native ciphers and MACs the core uses where one is there
 * (Node, Deno and Bun): taken from `process.getBuiltinModule`, not imported, so the core has no
 * `node:` import and still loads where there is none. Each user checks what it takes against known
 * answers before using it.
 * @module
 */

/** `node:crypto` from the runtime (`process.getBuiltinModule`), when it has one. */
export function builtinNodeCrypto(): unknown {
  try {
    const p = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    return p?.getBuiltinModule?.("node:crypto");
  } catch {
    return undefined;
  }
}
