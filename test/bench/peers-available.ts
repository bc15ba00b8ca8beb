import type { Test } from 'tap';
import { missingPeerPackages } from '../../scripts/peers/install.js';

/**
 * The peer-server tests need etcd and redis-server from Debian's packages. CI installs them (.ci/run), so
 * there a missing package fails the test; on a developer machine without them the test says how to
 * install them and is skipped.
 */
export function requirePeers(t: Test): boolean {
  const missing = missingPeerPackages();
  if (missing.length === 0) return true;
  const message = `peer servers not installed (${missing.join(', ')}): run 'npm run peers -- install'`;
  if (process.env.CI) t.fail(message);
  else t.pass(message, { skip: message });
  return false;
}
