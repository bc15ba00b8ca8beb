import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Context, Hono } from 'hono';
import { SquallError } from '../src/api/errors.js';
import type { AppEnv } from './context.js';
import type { Metrics } from './metrics.js';

/** The dashboard's files (http/dashboard/), each with its content type. Nothing else is served from there. */
const ASSETS: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'main.js': 'text/javascript; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

/**
 * The page may load only its own files and talk only to this node: no inline script or style, no other
 * origin, no framing. (Values are rendered as text, never HTML; this is the second line.)
 */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

interface Asset {
  body: Uint8Array<ArrayBuffer>;
  type: string;
  etag: string;
}

let loaded: Map<string, Asset> | null = null;

/** Read once per process (the files are small and fixed while it runs). */
function assets(): Map<string, Asset> {
  if (loaded) return loaded;
  const m = new Map<string, Asset>();
  for (const [name, type] of Object.entries(ASSETS)) {
    const body = new Uint8Array(readFileSync(new URL(`./dashboard/${name}`, import.meta.url)));
    m.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  loaded = m;
  return m;
}

/**
 * GET / → /dashboard; GET /dashboard (the page), /dashboard/{file} (its scripts and style) and
 * /dashboard/metrics.json (this member's cumulative figures, which the page turns into rates).
 */
export function dashboardRoutes(app: Hono<AppEnv>, metrics: Metrics): void {
  const files = assets();
  const serve = (c: Context<AppEnv>, name: string): Response => {
    const a = files.get(name);
    if (!a) throw new SquallError('route_not_found', `no dashboard file ${name}`);
    const headers = {
      'content-type': a.type,
      etag: a.etag,
      'cache-control': 'no-cache',
      'content-security-policy': CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    };
    if (c.req.header('if-none-match') === a.etag) return c.body(null, 304, headers);
    return c.body(a.body, 200, headers);
  };
  app.get('/', (c) => c.redirect('/dashboard', 302));
  app.get('/dashboard', (c) => serve(c, 'index.html'));
  app.get('/dashboard/metrics.json', async (c) => c.json(await metrics.snapshot(), 200, { 'cache-control': 'no-store' }));
  app.get('/dashboard/:file', (c) => serve(c, c.req.param('file')));
}
