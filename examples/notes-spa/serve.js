// serve.js serves the notes app on http://127.0.0.1:8082 (NOTES_SPA_ADDR):
// its page, its script, the SDK from js/src, and /notes passed on to the
// notes service (NOTES_URL, default http://127.0.0.1:8081), which has no
// CORS of its own. Node's standard library only: node examples/notes-spa/serve.js
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const files = {
  '/': [here('./index.html'), 'text/html; charset=utf-8'],
  '/app.js': [here('./app.js'), 'text/javascript'],
  '/sessiond-browser.js': [here('../../js/src/sessiond-browser.js'), 'text/javascript'],
};
const notes = process.env.NOTES_URL || 'http://127.0.0.1:8081';
const [host, port] = (process.env.NOTES_SPA_ADDR || '127.0.0.1:8082').split(':');

createServer(async (req, res) => {
  const path = new URL(req.url, 'http://x').pathname;
  if (path === '/notes') {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const headers = {};
    for (const h of ['authorization', 'dpop', 'content-type']) if (req.headers[h]) headers[h] = req.headers[h];
    try {
      const up = await fetch(notes + '/notes', { method: req.method, headers, body: chunks.length ? Buffer.concat(chunks) : undefined });
      const out = { 'Content-Type': up.headers.get('Content-Type') || 'application/json' };
      for (const h of ['WWW-Authenticate', 'DPoP-Nonce']) if (up.headers.get(h)) out[h] = up.headers.get(h);
      res.writeHead(up.status, out).end(Buffer.from(await up.arrayBuffer()));
    } catch (e) {
      res.writeHead(502).end('notes service: ' + e.message);
    }
    return;
  }
  const f = files[path];
  if (!f) return res.writeHead(404).end('not found');
  res.writeHead(200, { 'Content-Type': f[1], 'Cache-Control': 'no-cache' }).end(await readFile(f[0]));
}).listen(Number(port), host, () => console.log(`notes app on http://${host}:${port}/`));
