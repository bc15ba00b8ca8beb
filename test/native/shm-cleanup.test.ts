import { existsSync, readdirSync } from 'node:fs';
import t from 'tap';
import { loadFabricAddon } from '../../src/transport/fabric/addon.js';
import { addonReady, startGroup } from './fixtures/harness.js';

const dir = '/dev/shm';
const filesOf = (prefix: string) => readdirSync(dir).filter((f) => f.startsWith(`${prefix}-`));
const fileOf = (shmName: string) => readdirSync(dir).find((f) => f === shmName || f.startsWith(`${shmName}:`));

if (addonReady(t)) {
  t.test('no leaked shm files after a crash-and-restart cycle; a live process keeps its files', async (t) => {
    const shmPrefix = 'sqtest_crash'; // its own prefix: the test counts every file with it
    loadFabricAddon().cleanupStaleShm(shmPrefix);
    t.same(filesOf(shmPrefix), [], 'no files with this prefix at start');
    const idle = { n: 1, config: { provider: 'shm' as const, shmPrefix }, scenario: { kind: 'idle' as const } };

    const a = await startGroup(t, idle);
    const aName = (await a.members[0]!.result).shmName as string;
    const aFile = fileOf(aName);
    t.ok(aFile, `member A has its shm file (${aName})`);
    const b = await startGroup(t, idle);
    const bFile = fileOf((await b.members[0]!.result).shmName as string);
    t.ok(bFile, 'member B (stays alive) has its shm file');

    await a.kill(0);
    t.ok(existsSync(`${dir}/${aFile}`), 'a SIGKILLed member leaves its shm file behind');

    const c = await startGroup(t, idle); // A restarting
    const cFile = fileOf((await c.members[0]!.result).shmName as string);
    t.notOk(existsSync(`${dir}/${aFile}`), "the restarted member removed the dead member's file at start");
    t.ok(existsSync(`${dir}/${bFile}`), "the live member's file was left alone");
    t.ok(cFile && existsSync(`${dir}/${cFile}`), 'the restarted member has its own file');

    await b.stop(true);
    await c.stop(false); // exits without close(): the addon's exit hook closes the endpoint
    t.same(filesOf(shmPrefix), [], 'no files left after clean exits (with and without close())');
  });
}
