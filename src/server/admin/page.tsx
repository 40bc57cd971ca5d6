/** @jsxImportSource hono/jsx */
/**
 * The review page's markup: a shell the script fills in. The server has nothing of the node's
 * data to render here (the admin token lives in the browser's sessionStorage, never in a cookie),
 * so no stored value passes through this view.
 */
import { raw } from "hono/html";
import script from "./page.client.js" with { type: "text" };
import style from "./page.style.css" with { type: "text" };

// Inlined as they are: neither may close its own element early.
if (/<\/script/i.test(script) || /<\/style/i.test(style)) throw new Error("admin page: inline script or style contains a closing tag");

function base64Sha256(text: string): string {
  return new Bun.CryptoHasher("sha256").update(text).digest("base64");
}

/** Inline script and style are allowed by their hashes only; nothing may load from elsewhere. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `script-src 'sha256-${base64Sha256(script)}'`,
  `style-src 'sha256-${base64Sha256(style)}'`,
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

export function AdminPage() {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>links: review</title>
        <style>{raw(style)}</style>
      </head>
      <body>
        <header>
          <h1>links: review</h1>
          <button id="sign-out" type="button" hidden>
            Sign out
          </button>
        </header>
        <main>
          <section id="sign-in">
            <form id="sign-in-form">
              <label for="token">Admin token</label>
              <input id="token" name="token" type="password" autocomplete="off" spellcheck={false} required />
              <button type="submit">Sign in</button>
            </form>
            <p class="hint">
              The token stays in this browser tab only (sessionStorage) and goes to this node as an Authorization
              header. A link ending in #token=… signs in too; the token is then removed from the address bar.
            </p>
          </section>
          <p id="status" role="status"></p>
          <div id="villages"></div>
        </main>
        <script>{raw(script)}</script>
      </body>
    </html>
  );
}
