/**
 * The demo's single page: a login form, or (logged in) the shared counter, the socket's state
 * and the bridge events, with a tiny inline script on the socket.io client that the socket.io
 * server serves at /socket.io/socket.io.js.
 * @module
 */

/** What the logged-in page shows. */
export interface PageView {
  name: string;
  count: number;
  /** The first characters of the session id. */
  session: string;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

const STYLE = `
body { font: 16px/1.5 system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { margin-bottom: 0; } .sub { color: #666; margin-top: .25rem; }
.row { display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; margin: 1rem 0; }
button, input { font: inherit; padding: .35rem .8rem; }
#count { font-size: 2.5rem; font-weight: 700; min-width: 3ch; display: inline-block; }
#socket[data-state="connected"] { color: #107010; } #socket[data-state="disconnected"] { color: #b00020; }
#events { font-family: ui-monospace, monospace; font-size: .9rem; padding-left: 1.5rem; }
code { background: #f2f2f2; padding: 0 .25rem; }
`;

// Runs in the browser. `io` comes from /socket.io/socket.io.js; the cookies are HttpOnly, so the
// socket's handshake carries them without this script ever seeing them.
const SCRIPT = `
const $ = (id) => document.getElementById(id);
const setCount = (n) => { if (typeof n === "number") $("count").textContent = String(n); };
const status = (state, text) => { $("socket").dataset.state = state; $("socket").textContent = text; };
const log = (text) => {
  const li = document.createElement("li");
  li.textContent = new Date().toLocaleTimeString() + "  " + text;
  $("events").prepend(li);
};
const socket = io();
socket.on("connect", () => { status("connected", "connected"); $("inc-socket").disabled = false; });
socket.on("disconnect", (reason) => {
  $("inc-socket").disabled = true;
  status("disconnected", reason === "io server disconnect"
    ? "disconnected by the server: the session was destroyed (logged out elsewhere?)"
    : "disconnected (" + reason + ")");
});
socket.on("bridge", (e) => {
  if (e.event === "sessionSet") {
    log("sessionSet " + e.session + (e.isNew ? " (new)" : "") + " count=" + e.count);
    setCount(e.count);
    if (e.name) $("name").textContent = e.name;
    $("session").textContent = e.session;
  } else log(e.event + " " + e.session + (e.reason ? " (" + e.reason + ")" : ""));
});
$("inc-http").onclick = async () => {
  const res = await fetch("/count", { method: "POST" });
  const body = await res.json();
  if (res.ok) setCount(body.count); else log("HTTP " + res.status + ": " + body.error);
};
$("inc-socket").onclick = async () => {
  try {
    const reply = await socket.timeout(3000).emitWithAck("count");
    if (reply.error) log("socket: " + reply.error); else setCount(reply.count);
  } catch (err) { log("socket: " + err.message); }
};
`;

/** The whole page: the login form when `view` is undefined, else the logged-in page. */
export function renderPage(view: PageView | undefined): string {
  const body = view === undefined
    ? `<form method="post" action="/login" class="row">
  <input name="name" placeholder="your name" maxlength="40" autofocus required>
  <button id="login">Log in</button>
</form>
<p>Logging in sets two HttpOnly cookies over HTTP; the page's socket then shares the session.</p>`
    : `<p>Hello, <b id="name">${escapeHtml(view.name)}</b>. Session <code id="session">${
      escapeHtml(view.session)
    }</code>, socket <b id="socket" data-state="connecting">connecting</b>.</p>
<div class="row">
  <span id="count">${view.count}</span>
  <button id="inc-http">+1 over HTTP</button>
  <button id="inc-socket" disabled>+1 over socket.io</button>
</div>
<form method="post" action="/logout"><button id="logout">Log out</button></form>
<p>Open this page in a second tab: both share the counter. Log out there and this tab's socket
is disconnected live.</p>
<h2>Bridge events</h2>
<ol id="events" reversed></ol>
<script src="/socket.io/socket.io.js"></script>
<script>${SCRIPT}</script>`;
  return `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>unisession demo</title>
<style>${STYLE}</style>
<h1>unisession demo</h1>
<p class="sub">One session for HTTP (Hono) and WebSocket (socket.io), in the embedded MapStore.</p>
${body}
</html>
`;
}
