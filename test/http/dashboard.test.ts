import t, { type Test } from 'tap';
import { Window } from 'happy-dom';
import { EventSource } from 'undici';
import { httpNode, raw } from '../fixtures/http-node.js';

/**
 * The web dashboard (http/dashboard/) in a headless DOM (happy-dom) against a real node on port 0: the page
 * loads its scripts from the node, calls the API, and the tests read what it rendered and click through it.
 */

type DashboardWindow = InstanceType<typeof Window>;

async function until<T>(what: string, probe: () => T | null | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`dashboard: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function openDashboard(t: Test, url: string, hash = ''): Promise<DashboardWindow> {
  const window = new Window({ url: `${url}/dashboard${hash}`, settings: { enableJavaScriptEvaluation: true, suppressInsecureJavaScriptEnvironmentWarning: true } });
  // happy-dom has no EventSource; undici's is the WHATWG one.
  (window as unknown as { EventSource: typeof EventSource }).EventSource = EventSource;
  const page = await raw(url, 'GET', '/dashboard');
  window.document.write(String(page.json.text));
  t.teardown(async () => {
    // stop the page's timer and feed, let what it has in flight finish, then close it
    (window as unknown as { squallDashboard?: { stop(): void } }).squallDashboard?.stop();
    await window.happyDOM.waitUntilComplete();
    await window.happyDOM.close();
  });
  // the module script has run once the first refresh rendered the members
  await until('the page to start', () => window.document.querySelectorAll('#members tbody tr').length > 0);
  return window;
}

const rows = (w: DashboardWindow, table: string): string[][] =>
  [...w.document.querySelectorAll(`#${table} tbody tr`)].map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? ''));

const text = (w: DashboardWindow, id: string): string => w.document.getElementById(id)?.textContent ?? '';

const hidden = (w: DashboardWindow, id: string): boolean => (w.document.getElementById(id) as unknown as { hidden: boolean } | null)?.hidden ?? true;

/** Clicks the link whose text is `label` in the first column of `table`. */
function clickRow(w: DashboardWindow, table: string, label: string): void {
  const link = [...w.document.querySelectorAll(`#${table} tbody a`)].find((a) => a.textContent === label);
  if (!link) throw new Error(`no link ${label} in #${table}`);
  (link as unknown as { click(): void }).click();
}

function submit(w: DashboardWindow, form: string): void {
  w.document.getElementById(form)!.dispatchEvent(new w.Event('submit', { cancelable: true }));
}

function setInput(w: DashboardWindow, id: string, value: string): void {
  (w.document.getElementById(id) as unknown as { value: string }).value = value;
}

t.test('the page and its files: redirect, content types, CSP, revalidation, nothing else served', async (t) => {
  const { node } = await httpNode(t);
  const root = await raw(node.url, 'GET', '/');
  t.equal(root.status, 302);
  t.equal(root.headers.location, '/dashboard');
  const page = await raw(node.url, 'GET', '/dashboard');
  t.equal(page.status, 200);
  t.match(page.headers['content-type'], /^text\/html/);
  t.match(page.headers['content-security-policy'], /default-src 'none'.*script-src 'self'/);
  t.equal(page.headers['x-content-type-options'], 'nosniff');
  // every file the page refers to is served, with its type
  const refs = [...String(page.json.text).matchAll(/(?:src|href)="(\/dashboard\/[^"]+)"/g)].map((m) => m[1]!);
  t.ok(refs.length >= 2, 'the page loads its script and style from /dashboard/');
  for (const ref of [...refs, '/dashboard/app.js']) {
    const r = await raw(node.url, 'GET', ref);
    t.equal(r.status, 200, ref);
    t.match(r.headers['content-type'], ref.endsWith('.css') ? /^text\/css/ : /^text\/javascript/, ref);
  }
  const etag = String(page.headers.etag);
  t.equal((await raw(node.url, 'GET', '/dashboard', undefined, { 'if-none-match': etag })).status, 304);
  for (const bad of ['/dashboard/nope.js', '/dashboard/..%2Fdashboard.ts', '/dashboard/%2e%2e%2fapp.ts']) {
    const r = await raw(node.url, 'GET', bad);
    t.equal(r.status, 404, bad);
    t.equal(r.json.error?.code, 'route_not_found', bad);
  }
});

t.test('cluster, pools, keys now and as of a time, values (text and binary), history, errors', async (t) => {
  const { node, client } = await httpNode(t);
  await client.createPool('/photos', { type: 'persistent' });
  await client.createPool('/vol', { type: 'volatile', retain: { versions: 3 } });
  const w1 = await client.put('/photos/cat.txt', 'meow', { contentType: 'text/plain' });
  const w2 = await client.put('/photos/cat.txt', 'purr', { contentType: 'text/plain' });
  await client.put('/photos/bin.dat', Buffer.from([0, 1, 2, 255, 254]), { contentType: 'application/octet-stream' });

  const w = await openDashboard(t, node.url);
  await until('the cluster and pools', () => rows(w, 'members').length === 1 && rows(w, 'pool-list').length === 2);
  t.match(text(w, 'cluster-summary'), /view \d+ · 1 member/);
  t.match(rows(w, 'members')[0], [/^\d+/, node.url, 'up']);
  t.ok(rows(w, 'shards').length >= 2, 'a row per shard');
  await until('the ready badge', () => text(w, 'node-state') === 'ready');
  t.same(
    rows(w, 'pool-list').map((r) => r.slice(0, 4)),
    [
      ['/photos', 'persistent', '2', 'every version'],
      ['/vol', 'volatile', '1', 'last 3 versions'],
    ],
  );

  // a pool's keys now
  clickRow(w, 'pool-list', '/photos');
  await until('the keys of /photos', () => rows(w, 'key-list').length === 2);
  const cat = rows(w, 'key-list').find((r) => r[0] === '/photos/cat.txt');
  t.equal(cat?.[1], String(w2.version), 'the current version is listed');
  t.match(text(w, 'keys-status'), /2 keys in \/photos/);

  // a value and its history
  clickRow(w, 'key-list', '/photos/cat.txt');
  await until('the value of cat.txt', () => text(w, 'object-value') === 'purr');
  t.match(text(w, 'object-meta'), /text\/plain/);
  t.match(text(w, 'object-meta'), new RegExp(`previous version${w1.version} \\(view`), 'the previous version, described');
  t.equal(w.location.hash, '#/photos/cat.txt', 'the address names the key shown');
  await until('the history of cat.txt', () => rows(w, 'history').length === 2);
  t.same(
    rows(w, 'history').map((r) => r[0]),
    [String(w1.version), String(w2.version)],
  );
  clickRow(w, 'history', String(w1.version));
  await until('version 1 of cat.txt', () => text(w, 'object-value') === 'meow');
  t.match(text(w, 'object-meta'), /previous versionnone \(the key's first version\)/, "a key's first version has none");

  // binary values are shown in hex
  clickRow(w, 'key-list', '/photos/bin.dat');
  await until('the hex dump of bin.dat', () => w.document.getElementById('object-value')?.className === 'hex');
  t.match(text(w, 'object-value'), /^000000 {2}00 01 02 ff fe/);

  // as of the first write's time: one consistent cut, where cat.txt was still "meow" and bin.dat absent
  setInput(w, 'keys-at', String(w1.timestamp_us));
  submit(w, 'keys-form');
  await until('the keys as of the first write', () => rows(w, 'key-list').length === 1 && /as of/.test(text(w, 'keys-status')));
  t.same(rows(w, 'key-list')[0]?.slice(0, 2), ['/photos/cat.txt', String(w1.version)]);
  clickRow(w, 'key-list', '/photos/cat.txt');
  await until('cat.txt as of the first write', () => text(w, 'object-value') === 'meow');

  // a bad time shows the API's error, then a good request clears it
  setInput(w, 'keys-at', 'last tuesday');
  submit(w, 'keys-form');
  await until('the error of a bad time', () => !hidden(w, 'error'));
  t.match(text(w, 'error'), /listing keys: bad_parameter/);
  setInput(w, 'keys-at', '');
  submit(w, 'keys-form');
  await until('the error cleared', () => hidden(w, 'error') && rows(w, 'key-list').length === 2);
});

t.test('this member: request rates, latencies and write stages between two refreshes', async (t) => {
  const { node, client } = await httpNode(t);
  await client.createPool('/m', { type: 'persistent' });
  const snap = await raw(node.url, 'GET', '/dashboard/metrics.json');
  t.equal(snap.status, 200);
  t.match(snap.json, { at_ms: Number, cpu_seconds: Number, resident_bytes: Number, requests: { pools: { count: Number } } });
  // read from the process itself: right without any /metrics scrape (prom-client's defaults move only when scraped)
  t.ok((snap.json.cpu_seconds as number) > 0, `CPU time without a scrape (${String(snap.json.cpu_seconds)} s)`);
  t.ok((snap.json.resident_bytes as number) > 0, 'resident size without a scrape');
  for (let i = 0; i < 3; i++) await client.put('/m/busy', 'x'.repeat(1000));
  const later = await raw(node.url, 'GET', '/dashboard/metrics.json');
  t.ok((later.json.cpu_seconds as number) > (snap.json.cpu_seconds as number), 'CPU time moves between two snapshots');
  const w = await openDashboard(t, node.url);
  const page = (w as unknown as { squallDashboard: { refresh(): Promise<void>; stop(): void } }).squallDashboard;
  page.stop(); // no timer refresh in between: the two below bracket the requests
  await page.refresh();
  for (let i = 0; i < 20; i++) await client.put(`/m/k${i}`, 'v');
  await client.get('/m/none').catch(() => undefined); // a 404
  await page.refresh();
  const objects = await until('the objects route', () => rows(w, 'routes').find((r) => r[0] === 'objects'));
  t.ok(Number(objects[1]) > 0, `puts per second shown (${objects[1]})`);
  t.ok(Number(objects[2]) > 0, `4xx per second shown (${objects[2]})`);
  t.match(objects[4], /ms$/, 'mean latency');
  const persisted = rows(w, 'stages').find((r) => r[0] === 'persisted');
  t.ok(persisted && Number(persisted[1]) > 0, 'persisted writes per second');
  t.match(persisted?.slice(2), [/ms$/, /ms$/, /ms$/], 'a mean for each write stage');
  t.match(text(w, 'member-summary'), /CPU \d+% of a core/);
});

t.test('a member that refuses data routes still shows what it can; one that answers nothing is unreachable', async (t) => {
  const { node } = await httpNode(t);
  const w = await openDashboard(t, node.url);
  const page = (w as unknown as { squallDashboard: { refresh(): Promise<void>; stop(): void } }).squallDashboard;
  page.stop();
  const win = w as unknown as { fetch: (u: string, init?: unknown) => Promise<unknown> };
  const realFetch = win.fetch.bind(w);
  // what a member in a minority answers: 503 no_quorum on data routes and on /readyz, /v1/cluster still served
  const noQuorum = (): unknown =>
    new w.Response(JSON.stringify({ error: { code: 'no_quorum', message: 'this member is in a minority' } }), { status: 503, headers: { 'content-type': 'application/json' } });
  win.fetch = (u: string, init?: unknown) => (/\/v1\/pools|\/readyz/.test(u) ? Promise.resolve(noQuorum()) : realFetch(u, init));
  await page.refresh();
  t.equal(text(w, 'node-state'), 'not ready (no_quorum)');
  t.match(text(w, 'refreshed'), /not shown: pools: no_quorum: this member is in a minority/);
  t.equal(rows(w, 'members').length, 1, 'the cluster panel is still there');
  win.fetch = () => Promise.reject(new TypeError('fetch failed'));
  await page.refresh();
  t.equal(text(w, 'node-state'), 'unreachable');
  win.fetch = realFetch;
  await page.refresh();
  t.equal(text(w, 'node-state'), 'ready', 'and back');
});

t.test('live changes: puts and deletes under a prefix arrive as they happen; a deleted key shows as deleted', async (t) => {
  const { node, client } = await httpNode(t);
  await client.createPool('/feed', { type: 'persistent' });
  const w = await openDashboard(t, node.url);
  setInput(w, 'watch-prefix', '/feed/');
  submit(w, 'watch-form');
  await until('the watch to open', () => text(w, 'watch-status') === 'watching /feed/');
  const put = await client.put('/feed/a', 'hello');
  await until('the put event', () => rows(w, 'events').length === 1);
  t.same(rows(w, 'events')[0]?.slice(1, 4), ['put', '/feed/a', String(put.version)]);
  const del = await client.delete('/feed/a');
  await until('the delete event', () => rows(w, 'events').length === 2);
  t.same(rows(w, 'events')[0]?.slice(1, 4), ['delete', '/feed/a', String(del.version)], 'newest first');
  // the newest event's key opens the object panel: the key is deleted now
  const newest = w.document.querySelector('#events tbody tr a') as unknown as { click(): void };
  newest.click();
  await until('the deleted state', () => /deleted at version/.test(text(w, 'object-meta')));
  t.match(text(w, 'object-meta'), new RegExp(`deleted at version ${del.version}`));
  (w.document.getElementById('watch-stop') as unknown as { click(): void }).click();
  t.equal(text(w, 'watch-status'), 'stopped');
  await client.put('/feed/b', 'after stop');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(rows(w, 'events').length, 2, 'nothing arrives once stopped');
});

t.test('a link to a key opens it, with the keys of its pool listed', async (t) => {
  const { node, client } = await httpNode(t);
  await client.createPool('/a', { type: 'persistent' });
  await client.createPool('/b', { type: 'volatile' });
  await client.put('/b/with space?', 'linked value');
  await client.put('/b/other', 'x');
  const w = await openDashboard(t, node.url, '#/b/with%20space%3F');
  await until('the linked value', () => text(w, 'object-value') === 'linked value');
  t.equal(text(w, 'object-key'), '/b/with space?');
  await until('the keys of /b', () => rows(w, 'key-list').length === 2);
  t.same(rows(w, 'key-list').map((r) => r[0]).sort(), ['/b/other', '/b/with space?']);
});
