import t from 'tap';
import { SquallError } from '../../src/api/index.js';
import { ALL_ERROR_CODES } from '../fixtures/fake-squall.js';
import { withPool } from '../fixtures/setup.js';

t.test('every API error code in a JSON body becomes a SquallError with code, status, message and details', async (t) => {
  const { client, fake } = await withPool(t);
  await client.put('/p/k', 'v');
  for (const [code, status] of ALL_ERROR_CODES) {
    const body = JSON.stringify({ error: { code, message: `the ${code} sentence`, extra: 42 } });
    fake.fault({ kind: 'answer', method: 'GET', status, body });
    const err = await client.get('/p/k').catch((e: unknown) => e);
    t.ok(err instanceof SquallError, `${code}: a SquallError`);
    t.match(err, { code, status, message: `the ${code} sentence`, details: { extra: 42 } }, `${code} (GET)`);

    fake.fault({ kind: 'answer', method: 'PUT', status, body });
    await t.rejects(client.put('/p/k', 'w'), { code, status, details: { extra: 42 } }, `${code} (PUT)`);

    // HEAD answers have no body: the code comes from the Squall-Error-Code header.
    fake.fault({ kind: 'answer', method: 'HEAD', status, headers: { 'squall-error-code': code } });
    await t.rejects(client.head('/p/k'), { code, status }, `${code} (HEAD)`);
  }
});

t.test('an error answer without a Squall body maps by status, or to internal', async (t) => {
  const { client, fake } = await withPool(t);
  await client.put('/p/k', 'v');
  const byStatus: [number, string][] = [
    [400, 'bad_parameter'],
    [404, 'not_found'],
    [409, 'pool_conflict'],
    [410, 'trimmed'],
    [412, 'version_mismatch'],
    [413, 'too_large'],
    [425, 'not_yet_stable'],
    [503, 'unavailable'],
  ];
  for (const [status, code] of byStatus) {
    fake.fault({ kind: 'answer', method: 'HEAD', status });
    await t.rejects(client.head('/p/k'), { code, details: { status } }, `HEAD ${status} → ${code}`);
  }
  fake.fault({ kind: 'answer', method: 'HEAD', status: 404, headers: { 'squall-version': '4294967300' } });
  await t.rejects(client.head('/p/k'), { code: 'deleted', details: { version: 4294967300 } }, 'a 404 naming a version is a delete');

  fake.fault({ kind: 'answer', method: 'GET', status: 502, body: '<html>bad gateway</html>', headers: { 'content-type': 'text/html' } });
  await t.rejects(client.get('/p/k'), { code: 'internal', details: { status: 502, body: '<html>bad gateway</html>' } });
  fake.fault({ kind: 'answer', method: 'GET', status: 500, body: JSON.stringify({ error: { code: 'brand_new_code', message: 'from the future' } }) });
  await t.rejects(client.get('/p/k'), { code: 'internal', details: { status: 500 } }, 'an unknown code is internal');
  fake.fault({ kind: 'answer', method: 'GET', status: 200, body: 'not json' });
  await t.rejects(client.history('/p/k'), { code: 'internal', message: /not JSON/ }, 'a 2xx that does not parse');
  fake.fault({ kind: 'answer', method: 'GET', status: 200, body: 'x', headers: { 'content-type': 'application/octet-stream' } });
  await t.rejects(client.get('/p/k'), { code: 'internal', details: { header: 'squall-version' } }, 'a read answer without its version');
});

t.test('errors produced by the node semantics (not injected)', async (t) => {
  const { client, fake } = await withPool(t);
  await t.rejects(client.get('/nopool/k'), { code: 'pool_not_found', status: 404 });
  await t.rejects(client.get('/p/absent'), { code: 'not_found', status: 404 });
  await t.rejects(client.head('/p/absent'), { code: 'not_found', status: 404 });

  await client.createPool('/r', { type: 'persistent', retain: { versions: 2 } });
  const w1 = await client.put('/r/k', 'a');
  await client.put('/r/k', 'b');
  await client.put('/r/k', 'c');
  await t.rejects(client.get('/r/k', { version: w1.version }), { code: 'trimmed', status: 410 });
  await t.rejects(client.head('/r/k', { version: w1.version }), { code: 'trimmed', status: 410 }, 'HEAD via the error-code header');

  fake.stabilityFrontierUs = w1.timestamp_us;
  await t.rejects(client.get('/p/k', { at: w1.timestamp_us + 1 }), { code: 'not_yet_stable', status: 425 });

  await t.rejects(client.createPool('/p/nested', { type: 'volatile' }), { code: 'pool_conflict', status: 409 });
  const { client: raw } = await withPool(t, { validateKeys: false });
  await t.rejects(raw.get('/p'), { code: 'bad_key', status: 400 });
});
