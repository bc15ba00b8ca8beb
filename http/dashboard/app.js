/**
 * The Squall web dashboard, served by every node at /dashboard: the cluster's view, members and shard
 * frontiers; the pools; a key browser that lists keys now or as of a time and shows a value with its
 * history; a live feed of changes under a prefix. It only calls the public HTTP API (API.md) of the node
 * that served it, so it shows what that node sees and works the same behind any node. Data is rendered
 * with textContent, never as HTML, and the page needs no build step (plain ES modules).
 */

/** How often the cluster and pool panels refresh. */
export const REFRESH_MS = 2000;
/** Keys per page of the key browser. */
export const KEYS_PAGE = 100;
/** Versions per page of a key's history. */
export const HISTORY_PAGE = 50;
/** Values up to this size are fetched and shown; bigger ones are only offered as a download. */
export const PREVIEW_BYTES_MAX = 256 * 1024;
/** Bytes shown in hex when a value is not UTF-8 text. */
export const HEX_PREVIEW_BYTES = 512;
/** Events the live feed keeps on screen (newest first). */
export const EVENTS_KEPT = 200;

const VIEW_FACTOR = 2 ** 32;

/** An answer of the API that is not 2xx, with its error code and message (API.md "Errors"). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

/** A key or pool path with each segment URL-encoded (its slashes kept). */
export function encodePath(path) {
  return path.split('/').map(encodeURIComponent).join('/');
}

/** Microseconds since the epoch as RFC 3339 with microseconds, in UTC. */
export function isoUs(us) {
  if (typeof us !== 'number' || !Number.isFinite(us)) return '—';
  const ms = Math.floor(us / 1000);
  const iso = new Date(ms).toISOString(); // ...T07:14:14.123Z
  const micros = String(Math.floor(us) - ms * 1000).padStart(3, '0');
  return `${iso.slice(0, -1)}${micros}Z`;
}

/** A version with its view and sequence number (version = view * 2^32 + seq). */
export function describeVersion(v) {
  if (typeof v !== 'number' || v < 0) return '—';
  return `${v} (view ${Math.floor(v / VIEW_FACTOR)}, seq ${v % VIEW_FACTOR})`;
}

export function formatBytes(n) {
  if (typeof n !== 'number') return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** How a value is shown: UTF-8 text as is, anything else as a hex dump of its first bytes. */
export function previewOf(bytes) {
  try {
    return { kind: 'text', text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
  } catch {
    const shown = bytes.subarray(0, HEX_PREVIEW_BYTES);
    const lines = [];
    for (let off = 0; off < shown.length; off += 16) {
      const row = Array.from(shown.subarray(off, off + 16), (b) => b.toString(16).padStart(2, '0')).join(' ');
      lines.push(`${off.toString(16).padStart(6, '0')}  ${row}`);
    }
    if (bytes.length > shown.length) lines.push(`… ${bytes.length - shown.length} more bytes`);
    return { kind: 'hex', text: lines.join('\n') };
  }
}

/**
 * Rates and means between two snapshots of /dashboard/metrics.json (cumulative figures): per route the
 * requests, 4xx and 5xx per second and the mean latency; per durability the writes per second and the mean
 * of each write stage; CPU as a share of one core. Null when the two are not in order.
 */
export function metricsDelta(prev, cur) {
  const dt = (cur.at_ms - prev.at_ms) / 1000;
  if (!(dt > 0)) return null;
  const routes = [];
  for (const [route, c] of Object.entries(cur.requests)) {
    const p = prev.requests[route] ?? { count: 0, client_errors: 0, server_errors: 0, seconds_sum: 0 };
    const n = c.count - p.count;
    routes.push({
      route,
      perS: n / dt,
      clientErrorsPerS: (c.client_errors - p.client_errors) / dt,
      serverErrorsPerS: (c.server_errors - p.server_errors) / dt,
      meanMs: n > 0 ? ((c.seconds_sum - p.seconds_sum) / n) * 1000 : null,
    });
  }
  routes.sort((a, b) => b.perS - a.perS || a.route.localeCompare(b.route));
  const writes = [];
  for (const [durability, stages] of Object.entries(cur.write_stages)) {
    const before = prev.write_stages[durability] ?? {};
    const mean = (stage) => {
      const c = stages[stage];
      if (!c) return null;
      const p = before[stage] ?? { sum: 0, count: 0 };
      const n = c.count - p.count;
      return n > 0 ? ((c.sum - p.sum) / n) * 1000 : null;
    };
    const ordered = stages.ordered ?? { count: 0 };
    writes.push({
      durability,
      perS: (ordered.count - (before.ordered?.count ?? 0)) / dt,
      orderedMs: mean('ordered'),
      syncedHereMs: mean('synced_here'),
      durableMs: mean('durable'),
    });
  }
  return { seconds: dt, cpuPercent: ((cur.cpu_seconds - prev.cpu_seconds) / dt) * 100, routes, writes };
}

/** A pool's retention as people read it. */
export function retentionText(retain) {
  const parts = [];
  if (retain && retain.versions != null) parts.push(`last ${retain.versions} versions`);
  if (retain && retain.seconds != null) parts.push(`last ${retain.seconds} s`);
  return parts.length > 0 ? parts.join(', ') : 'every version';
}

async function errorOf(res) {
  let code = `http_${res.status}`;
  let message = res.statusText || 'request failed';
  try {
    const body = await res.json();
    if (body && body.error) ({ code, message } = body.error);
  } catch {
    // not JSON: keep the status
  }
  return new ApiError(res.status, code, message);
}

/**
 * Starts the dashboard in `doc` (the page of index.html). Returns stop(), which ends the refresh timer and
 * the live feed.
 */
export function mount(doc, win = doc.defaultView) {
  const $ = (id) => {
    const e = doc.getElementById(id);
    if (!e) throw new Error(`dashboard: no element #${id}`);
    return e;
  };
  const base = win.location.href;
  const url = (path) => new URL(path, base).toString();

  async function getJson(path) {
    const res = await win.fetch(url(path), { headers: { accept: 'application/json' } });
    if (!res.ok) throw await errorOf(res);
    return res.json();
  }

  function cell(row, text, className) {
    const td = doc.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function linkCell(row, text, onClick) {
    const td = doc.createElement('td');
    const a = doc.createElement('a');
    a.href = '#';
    a.textContent = text;
    a.addEventListener('click', (e) => {
      e.preventDefault();
      onClick();
    });
    td.appendChild(a);
    row.appendChild(td);
    return td;
  }

  function tbody(id) {
    return $(id).querySelector('tbody');
  }

  function showError(where, e) {
    const box = $('error');
    box.textContent = `${where}: ${e instanceof Error ? e.message : String(e)}`;
    box.hidden = false;
  }

  function clearError() {
    $('error').hidden = true;
    $('error').textContent = '';
  }

  // ---- cluster and pools (refreshed) ----

  function renderCluster(c) {
    $('cluster-summary').textContent = `view ${c.view} · ${c.members.length} member${c.members.length === 1 ? '' : 's'} · leader ${c.leader ?? '—'}`;
    const members = tbody('members');
    members.replaceChildren();
    for (const m of c.members) {
      const row = doc.createElement('tr');
      cell(row, m.id === c.leader ? `${m.id} (leader)` : String(m.id));
      const td = doc.createElement('td');
      if (m.http) {
        const a = doc.createElement('a');
        a.href = `${m.http}/dashboard`;
        a.textContent = m.http;
        td.appendChild(a);
      } else td.textContent = '—';
      row.appendChild(td);
      cell(row, m.status, `status-${m.status}`);
      members.appendChild(row);
    }
    const shards = tbody('shards');
    shards.replaceChildren();
    const nowUs = Date.now() * 1000;
    for (const g of c.subgroups) {
      for (const s of g.shards) {
        const row = doc.createElement('tr');
        cell(row, `${g.type} ${g.subgroup}`);
        cell(row, String(s.shard));
        cell(row, s.members.join(', '));
        cell(row, s.delivered_version === null ? '—' : String(s.delivered_version));
        cell(row, s.persisted_frontier === null ? '—' : String(s.persisted_frontier));
        const lagMs = (nowUs - s.stability_frontier_us) / 1000;
        cell(row, Number.isFinite(lagMs) ? `${Math.max(0, Math.round(lagMs))} ms` : '—');
        shards.appendChild(row);
      }
    }
  }

  let poolsShown = '';

  function renderPools(pools) {
    // re-rendered only when they changed, so a refresh does not reset a selection in progress
    const signature = JSON.stringify(pools);
    if (signature === poolsShown) return;
    poolsShown = signature;
    const body = tbody('pool-list');
    body.replaceChildren();
    for (const p of pools) {
      const row = doc.createElement('tr');
      linkCell(row, p.path, () => {
        $('keys-pool').value = p.path;
        void listKeys(false);
      });
      cell(row, p.type);
      cell(row, String(p.shards));
      cell(row, retentionText(p.retain));
      cell(row, p.deleted ? 'deleted (read-only)' : 'open');
      body.appendChild(row);
    }
    $('pools-empty').hidden = pools.length > 0;
    const select = $('keys-pool');
    const chosen = select.value;
    select.replaceChildren();
    for (const p of pools) {
      const o = doc.createElement('option');
      o.value = p.path;
      o.textContent = p.path;
      select.appendChild(o);
    }
    if (pools.some((p) => p.path === chosen)) select.value = chosen;
  }

  let lastMetrics = null;

  async function refreshMetrics() {
    const cur = await getJson('/dashboard/metrics.json');
    const prev = lastMetrics;
    lastMetrics = cur;
    const memory = `${formatBytes(cur.resident_bytes)} resident · event loop lag p99 ${(cur.event_loop_lag_p99_s * 1000).toFixed(1)} ms`;
    const d = prev === null ? null : metricsDelta(prev, cur);
    if (d === null) {
      $('member-summary').textContent = `${memory} · measuring rates…`;
      return;
    }
    $('member-window').textContent = `(last ${d.seconds.toFixed(1)} s)`;
    $('member-summary').textContent = `CPU ${d.cpuPercent.toFixed(0)}% of a core · ${memory}`;
    const ms = (v) => (v === null ? '—' : `${v.toFixed(v < 10 ? 2 : 1)} ms`);
    const rate = (v) => (v === 0 ? '0' : v < 10 ? v.toFixed(1) : v.toFixed(0));
    const routes = tbody('routes');
    routes.replaceChildren();
    for (const r of d.routes) {
      if (r.perS === 0) continue; // routes idle in this window
      const row = doc.createElement('tr');
      cell(row, r.route);
      cell(row, rate(r.perS));
      cell(row, rate(r.clientErrorsPerS));
      cell(row, rate(r.serverErrorsPerS), r.serverErrorsPerS > 0 ? 'alert' : '');
      cell(row, ms(r.meanMs));
      routes.appendChild(row);
    }
    const stages = tbody('stages');
    stages.replaceChildren();
    for (const w of d.writes) {
      const row = doc.createElement('tr');
      cell(row, w.durability);
      cell(row, rate(w.perS));
      cell(row, ms(w.orderedMs));
      cell(row, ms(w.syncedHereMs));
      cell(row, ms(w.durableMs));
      stages.appendChild(row);
    }
  }

  let firstPools = true;

  /**
   * One refresh: each panel on its own, so a member that answers some routes and refuses others (e.g. 503
   * no_quorum on data routes while in a minority) still shows what it can. "unreachable" is for a member
   * that answers nothing.
   */
  async function refresh() {
    const badge = $('node-state');
    const [cluster, pools, ready, member] = await Promise.allSettled([
      getJson('/v1/cluster'),
      getJson('/v1/pools'),
      win.fetch(url('/readyz')),
      refreshMetrics(),
    ]);
    if (ready.status === 'rejected') {
      badge.textContent = 'unreachable';
      badge.className = 'badge bad';
      badge.title = ready.reason instanceof Error ? ready.reason.message : String(ready.reason);
      return;
    }
    if (ready.value.ok) {
      badge.textContent = 'ready';
      badge.className = 'badge ok';
      badge.title = '';
    } else {
      const e = await errorOf(ready.value);
      badge.textContent = `not ready (${e.code})`;
      badge.className = 'badge warn';
      badge.title = e.message;
    }
    const problems = [];
    if (cluster.status === 'fulfilled') renderCluster(cluster.value);
    else problems.push(`cluster: ${cluster.reason.message}`);
    if (pools.status === 'fulfilled') {
      renderPools(pools.value.pools);
      if (firstPools && pools.value.pools.length > 0) {
        // open on something: the keys of the pool of the linked key, or of the first pool
        firstPools = false;
        const linked = linkedKey();
        const pool = linked === null ? undefined : pools.value.pools.find((p) => linked.startsWith(`${p.path}/`));
        $('keys-pool').value = (pool ?? pools.value.pools[0]).path;
        void listKeys(false);
      }
    } else problems.push(`pools: ${pools.reason.message}`);
    if (member.status === 'rejected') problems.push(`this member: ${member.reason.message}`);
    $('refreshed').textContent = `updated ${new Date().toLocaleTimeString()}${problems.length > 0 ? ` · not shown: ${problems.join('; ')}` : ''}`;
  }

  // ---- key browser ----

  let keysNext = null;

  async function listKeys(more) {
    const pool = $('keys-pool').value;
    if (!pool) return;
    const prefix = $('keys-prefix').value.trim();
    const at = $('keys-at').value.trim();
    const q = new URLSearchParams({ limit: String(KEYS_PAGE) });
    if (prefix) q.set('prefix', prefix);
    if (at) q.set('at', at);
    if (more && keysNext !== null) q.set('cursor', keysNext);
    const status = $('keys-status');
    status.textContent = 'listing…';
    try {
      const page = await getJson(`/v1/pools${encodePath(pool)}/keys?${q}`);
      const body = tbody('key-list');
      if (!more) body.replaceChildren();
      for (const k of page.keys) {
        const row = doc.createElement('tr');
        linkCell(row, k.key, () => void showObject(k.key, at ? { at } : {}));
        cell(row, String(k.version));
        cell(row, isoUs(k.timestamp_us));
        cell(row, formatBytes(k.size));
        body.appendChild(row);
      }
      keysNext = page.next;
      $('keys-more').hidden = page.next === null;
      const n = body.children.length;
      status.textContent = `${n} key${n === 1 ? '' : 's'} in ${pool}${at ? ` as of ${at}` : ''}${page.next === null ? '' : ' (more below)'}`;
      clearError();
    } catch (e) {
      status.textContent = '';
      showError('listing keys', e);
    }
  }

  // ---- one object ----

  let shownKey = null;
  let historyNext = null;

  /** Shows `key` (its current value, or as of `read.at` / at `read.version`) and the first page of its history. */
  async function showObject(key, read) {
    $('object').hidden = false;
    $('object-key').textContent = key;
    const q = new URLSearchParams();
    if (read.version !== undefined) q.set('version', String(read.version));
    if (read.at !== undefined) q.set('at', read.at);
    const query = q.toString();
    const path = `/v1/objects${encodePath(key)}${query ? `?${query}` : ''}`;
    const meta = $('object-meta');
    const value = $('object-value');
    const download = $('object-download');
    meta.replaceChildren();
    value.textContent = '';
    value.className = '';
    download.hidden = true;
    const term = (name, text) => {
      const dt = doc.createElement('dt');
      dt.textContent = name;
      const dd = doc.createElement('dd');
      dd.textContent = text;
      meta.append(dt, dd);
    };
    try {
      const head = await win.fetch(url(path), { method: 'HEAD' });
      if (!head.ok) {
        // HEAD answers carry no body: the code is in a header
        const code = head.headers.get('squall-error-code') ?? `http_${head.status}`;
        const version = head.headers.get('squall-version');
        term('state', code === 'deleted' ? `deleted${version ? ` at version ${describeVersion(Number(version))}` : ''}` : code.replaceAll('_', ' '));
      } else {
        const size = Number(head.headers.get('content-length'));
        const version = Number(head.headers.get('squall-version'));
        term('version', describeVersion(version));
        term('written', isoUs(Number(head.headers.get('squall-timestamp-us'))));
        term('content type', head.headers.get('content-type') ?? '—');
        term('size', formatBytes(size));
        const previous = head.headers.get('squall-previous-version-by-key');
        if (previous !== null) term('previous version', previous === 'null' ? 'none (the key\'s first version)' : describeVersion(Number(previous)));
        const versionUrl = url(`/v1/objects${encodePath(key)}?version=${version}`);
        download.href = versionUrl;
        download.hidden = false;
        if (size > PREVIEW_BYTES_MAX) {
          value.textContent = `${formatBytes(size)}: too large to show here (limit ${formatBytes(PREVIEW_BYTES_MAX)}); use the download link.`;
          value.className = 'muted';
        } else {
          const res = await win.fetch(versionUrl);
          if (!res.ok) throw await errorOf(res);
          const p = previewOf(new Uint8Array(await res.arrayBuffer()));
          value.textContent = p.text;
          value.className = p.kind;
        }
      }
      // the address names the key shown, so it can be shared or reloaded
      win.history.replaceState(null, '', `#${encodePath(key)}`);
      if (shownKey !== key) await loadHistory(key, false);
      clearError();
    } catch (e) {
      showError(`reading ${key}`, e);
    }
  }

  async function loadHistory(key, more) {
    const q = new URLSearchParams({ history: '', limit: String(HISTORY_PAGE) });
    if (more && historyNext !== null) q.set('cursor', historyNext);
    const page = await getJson(`/v1/objects${encodePath(key)}?${q}`);
    const body = tbody('history');
    if (!more) body.replaceChildren();
    shownKey = key;
    for (const v of page.versions) {
      const row = doc.createElement('tr');
      linkCell(row, String(v.version), () => void showObject(key, { version: v.version }));
      cell(row, isoUs(v.timestamp_us));
      cell(row, v.deleted ? '—' : formatBytes(v.size));
      cell(row, v.deleted ? 'delete' : '');
      body.appendChild(row);
    }
    historyNext = page.next;
    $('history-more').hidden = page.next === null;
  }

  // ---- live feed ----

  let source = null;

  function stopWatch(reason) {
    if (source) source.close();
    source = null;
    $('watch-start').disabled = false;
    $('watch-stop').disabled = true;
    $('watch-status').textContent = reason;
  }

  function startWatch() {
    stopWatch('');
    const prefix = $('watch-prefix').value.trim();
    if (!prefix) return;
    if (typeof win.EventSource !== 'function') {
      $('watch-status').textContent = 'this browser has no EventSource';
      return;
    }
    const es = new win.EventSource(url(`/v1/watch?prefix=${encodeURIComponent(prefix)}`));
    source = es;
    $('watch-start').disabled = true;
    $('watch-stop').disabled = false;
    $('watch-status').textContent = `connecting to changes under ${prefix}…`;
    es.addEventListener('open', () => {
      if (source === es) $('watch-status').textContent = `watching ${prefix}`;
    });
    es.addEventListener('message', (m) => {
      if (source !== es) return;
      let e;
      try {
        e = JSON.parse(m.data);
      } catch {
        return;
      }
      const row = doc.createElement('tr');
      cell(row, isoUs(e.timestamp_us));
      cell(row, e.op, `op-${e.op}`);
      linkCell(row, e.key, () => void showObject(e.key, {}));
      cell(row, String(e.version));
      cell(row, e.op === 'delete' ? '—' : formatBytes(e.size));
      const body = tbody('events');
      body.insertBefore(row, body.firstChild);
      while (body.children.length > EVENTS_KEPT) body.removeChild(body.lastChild);
    });
    es.addEventListener('error', (m) => {
      if (source !== es) return;
      // The server sends `event: error` with an API error body when it ends the stream; the browser fires a
      // plain error when the connection drops (and reconnects with Last-Event-ID by itself).
      if (typeof m.data === 'string' && m.data) {
        let message = m.data;
        try {
          const body = JSON.parse(m.data);
          if (body.error) message = `${body.error.code}: ${body.error.message}`;
        } catch {
          // keep the raw text
        }
        stopWatch(`stopped: ${message}`);
      } else if (es.readyState === 2) {
        stopWatch('stopped: the node closed the stream');
      } else {
        $('watch-status').textContent = 'connection lost; reconnecting…';
      }
    });
  }

  /** The key named by the address (`/dashboard#/pool/key`), if any. */
  function linkedKey() {
    const hash = win.location.hash;
    if (!hash.startsWith('#/')) return null;
    try {
      return decodeURIComponent(hash.slice(1));
    } catch {
      return null;
    }
  }

  // ---- wiring ----

  $('keys-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void listKeys(false);
  });
  $('keys-more').addEventListener('click', () => void listKeys(true));
  $('history-more').addEventListener('click', () => {
    if (shownKey !== null) void loadHistory(shownKey, true).catch((e) => showError(`history of ${shownKey}`, e));
  });
  $('watch-form').addEventListener('submit', (e) => {
    e.preventDefault();
    startWatch();
  });
  $('watch-stop').addEventListener('click', () => stopWatch('stopped'));

  void refresh();
  const linked = linkedKey();
  if (linked !== null) void showObject(linked, {});
  const timer = win.setInterval(() => {
    if (!doc.hidden) void refresh();
  }, REFRESH_MS);

  return {
    refresh,
    stop() {
      win.clearInterval(timer);
      stopWatch('stopped');
    },
  };
}
