import t from 'tap';
import { killAndRejoin } from './fixtures/kill-and-rejoin.js';

// The victim is member 1: the lowest-ranked member, i.e. the view-change leader, so a new leader takes over.
t.test('5 member processes over TCP: SIGKILL the leader while streaming, survivors agree, it rejoins', async (t) => {
  await killAndRejoin(t, 5, 1);
});
