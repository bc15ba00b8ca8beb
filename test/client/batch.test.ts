import { Unpackr } from 'msgpackr';
import t from 'tap';
import type { BatchOpInput } from '../../src/client/index.js';
import { withPool } from '../fixtures/setup.js';

const unpackr = new Unpackr({ useRecords: false });

function ops(at: Date): BatchOpInput[] {
  return [
    { op: 'put', key: '/p/bin', value: Buffer.from([0, 255, 1]) },
    { op: 'put', key: '/p/text', value: 'héllo', content_type: 'text/plain' },
    { op: 'get', key: '/p/bin' },
    { op: 'get', key: '/p/old', at },
    { op: 'get', key: '/p/missing' },
    { op: 'delete', key: '/p/old' },
    { op: 'put', key: '/p/text', value: 'stale', if_match: 1 },
  ];
}

for (const encoding of ['msgpack', 'json'] as const) {
  t.test(`batch in ${encoding}: the body on the wire and the results`, async (t) => {
    const { client, fake } = await withPool(t);
    const old = await client.put('/p/old', 'old value');
    const results = await client.batch(ops(new Date(old.timestamp_us / 1000)), { encoding });
    const req = fake.requestsTo('POST', '/v1/batch').at(-1)!;
    const type = encoding === 'msgpack' ? 'application/msgpack' : 'application/json';
    t.equal(req.headers['content-type'], type);
    t.equal(req.headers.accept, type);
    t.type(req.headers['squall-request-id'], 'string');

    const sent = (encoding === 'msgpack' ? unpackr.unpack(req.body) : JSON.parse(req.body.toString())) as { ops: Record<string, unknown>[] };
    t.equal(sent.ops.length, 7);
    if (encoding === 'msgpack') {
      t.ok(sent.ops[0]!.value instanceof Uint8Array, 'bytes travel as msgpack bin');
      t.same([...(sent.ops[0]!.value as Uint8Array)], [0, 255, 1]);
      t.ok(sent.ops[1]!.value instanceof Uint8Array, 'text is sent as its UTF-8 bytes');
      t.equal(Buffer.from(sent.ops[1]!.value as Uint8Array).toString(), 'héllo');
    } else {
      t.equal(sent.ops[0]!.value, Buffer.from([0, 255, 1]).toString('base64'), 'bytes travel as base64');
      t.equal(sent.ops[1]!.value, Buffer.from('héllo').toString('base64'));
    }
    t.equal(sent.ops[3]!.at, old.timestamp_us, 'a Date is sent as µs');
    t.equal(sent.ops[1]!.content_type, 'text/plain');
    t.equal(sent.ops[6]!.if_match, 1);

    t.equal(results.length, 7, 'one result per op, in order');
    t.equal(results[0]!.status, 200);
    t.equal(results[0]!.key, '/p/bin');
    t.ok(Number.isSafeInteger(results[0]!.version));
    t.equal(results[1]!.status, 200);
    t.ok(Buffer.isBuffer(results[2]!.value), 'a get value is a Buffer');
    t.same([...results[2]!.value!], [0, 255, 1]);
    t.equal(results[2]!.version, results[0]!.version);
    t.equal(results[3]!.value!.toString(), 'old value', 'get at a past time');
    t.match(results[4], { status: 404, error: { code: 'not_found' } }, 'one op failing does not fail the others');
    t.equal(results[5]!.status, 200, 'delete');
    t.match(results[6], { status: 412, error: { code: 'version_mismatch' } });
    t.equal((await client.get('/p/text')).value.toString(), 'héllo');
    t.equal((await client.get('/p/text')).contentType, 'text/plain');
  });
}

t.test('ops already in wire form are packed as given; the caller keeps its objects', async (t) => {
  const { client } = await withPool(t);
  const list: BatchOpInput[] = [{ op: 'put', key: '/p/a', value: Buffer.from('x') }];
  const copy = JSON.stringify(list);
  await client.batch(list, { encoding: 'json' });
  t.equal(JSON.stringify(list), copy, 'not rewritten in place');
});

t.test('durability is sent for every write of the batch only when asked', async (t) => {
  const { client, fake } = await withPool(t);
  await client.batch([{ op: 'put', key: '/p/a', value: 'x' }]);
  t.equal(fake.requestsTo('POST', '/v1/batch').at(-1)!.headers['squall-durability'], undefined, 'the server default');
  await client.batch([{ op: 'put', key: '/p/a', value: 'y' }], { durability: 'delivered' });
  t.equal(fake.requestsTo('POST', '/v1/batch').at(-1)!.headers['squall-durability'], 'delivered');
});

t.test('a batch answer that does not match the ops is an error', async (t) => {
  const { client, fake } = await withPool(t);
  fake.fault({ kind: 'answer', method: 'POST', status: 200, body: JSON.stringify({ results: [] }) });
  await t.rejects(client.batch([{ op: 'get', key: '/p/a' }], { encoding: 'json' }), { code: 'internal', message: /0 results for 1 ops/ });
  fake.fault({ kind: 'answer', method: 'POST', status: 200, body: Buffer.from([0x81]) /* a map of one entry, cut short */, headers: { 'content-type': 'application/msgpack' } });
  await t.rejects(client.batch([{ op: 'get', key: '/p/a' }]), { code: 'internal', message: /msgpack/ });
  fake.fault({ kind: 'answer', method: 'POST', status: 400, body: JSON.stringify({ error: { code: 'bad_body', message: 'malformed batch' } }) });
  await t.rejects(client.batch([{ op: 'get', key: '/p/a' }]), { code: 'bad_body', status: 400 });
  // @ts-expect-error: an encoding the API does not have
  await t.rejects(client.batch([], { encoding: 'xml' }), { code: 'bad_parameter' });
});
