import { execFileSync } from 'node:child_process';

/** The Debian packages that provide the peer servers, and a binary each one installs. */
export const peerPackages = [
  { pkg: 'etcd-server', binary: 'etcd' },
  { pkg: 'etcd-client', binary: 'etcdctl' },
  { pkg: 'redis-server', binary: 'redis-server' },
] as const;

export function hasBinary(binary: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Packages whose binary is not on PATH yet. */
export function missingPeerPackages(): string[] {
  return peerPackages.filter((p) => !hasBinary(p.binary)).map((p) => p.pkg);
}

/**
 * Installs the missing packages with apt-get (as root; `apt-get update` first). Idempotent: does nothing
 * when every binary is present. The packages' own service units are not started (this machine's
 * policy-rc.d denies it, and the bench starts its own servers on free ports anyway).
 */
export function installPeers(log: (line: string) => void = () => {}): string[] {
  const missing = missingPeerPackages();
  if (missing.length === 0) {
    log('etcd-server, etcd-client and redis-server are already installed');
    return [];
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  log('apt-get update');
  execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
  log(`apt-get install ${missing.join(' ')}`);
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  const still = missingPeerPackages();
  if (still.length > 0) throw new Error(`still missing after apt-get install: ${still.join(', ')}`);
  return missing;
}
