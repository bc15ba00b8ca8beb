import t from 'tap';
import { killAndRejoin } from '../transport/fixtures/kill-and-rejoin.js';
import { addonReady, TEST_PROVIDERS, TEST_SHM_PREFIX } from './fixtures/harness.js';

// Issue 3's real-process group scenario (tcp-group-3.test.ts) with the members on the fabric data plane.
if (addonReady(t)) {
  for (const provider of TEST_PROVIDERS) {
    t.test(`3 member processes over fabric (${provider}): SIGKILL one while streaming, survivors agree, it rejoins`, async (t) => {
      await killAndRejoin(t, 3, 3, { kind: 'fabric', provider, shmPrefix: TEST_SHM_PREFIX });
    });
  }
}
