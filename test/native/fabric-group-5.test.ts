import t from 'tap';
import { killAndRejoin } from '../transport/fixtures/kill-and-rejoin.js';
import { addonReady, TEST_PROVIDERS, TEST_SHM_PREFIX } from './fixtures/harness.js';

// Issue 3's real-process group scenario (tcp-group-5.test.ts) with the members on the fabric data plane.
// The victim is member 1, the view-change leader, so a new leader takes over.
if (addonReady(t)) {
  for (const provider of TEST_PROVIDERS) {
    t.test(`5 member processes over fabric (${provider}): SIGKILL the leader while streaming, survivors agree, it rejoins`, async (t) => {
      await killAndRejoin(t, 5, 1, { kind: 'fabric', provider, shmPrefix: TEST_SHM_PREFIX });
    });
  }
}
