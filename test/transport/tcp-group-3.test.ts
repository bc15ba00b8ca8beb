import t from 'tap';
import { killAndRejoin } from './fixtures/kill-and-rejoin.js';

t.test('3 member processes over TCP: SIGKILL one while streaming, survivors agree, it rejoins', async (t) => {
  await killAndRejoin(t, 3, 3);
});
