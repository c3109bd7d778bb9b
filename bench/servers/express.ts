/**
 * Express benchmark server (Node): `bare` or `express-session` (default MemoryStore, the options
 * its README recommends). Same routes and answers as `hono.ts`.
 *
 * Usage: `node --import tsx bench/servers/express.ts <variant>`.
 * @module
 */
import type { AddressInfo } from "node:net";
import express, { type Request, type RequestHandler } from "express";
import expressSession from "express-session";
import { KEY, ready, unknownVariant, variantArg } from "./common.ts";

const VARIANTS = ["bare", "express-session"];
const variant = variantArg();
if (!VARIANTS.includes(variant)) unknownVariant("express", variant, VARIANTS);
const bare = variant === "bare";

const app = express();
const sessionMiddleware = expressSession({ secret: KEY, resave: false, saveUninitialized: false });
if (!bare) app.use(sessionMiddleware as RequestHandler);

const sessionOf = (req: Request) =>
  bare ? { n: 0 } : (req as unknown as { session: { n: number } }).session;
app.post("/new", (req, res) => {
  const session = sessionOf(req);
  session.n = Number(req.query.n);
  res.send(String(session.n));
});
app.get("/read", (req, res) => {
  res.send(String(sessionOf(req).n));
});
app.post("/incr", (req, res) => {
  const session = sessionOf(req);
  session.n = session.n + 1;
  res.send(String(session.n));
});

const server = app.listen(0, "127.0.0.1", () => ready((server.address() as AddressInfo).port));
