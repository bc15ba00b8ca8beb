import { paramsForSeed, SimCluster } from './cluster.js';
const c = new SimCluster(paramsForSeed(Number(process.argv[2])));
await c.run();
for (const t of c.traces) console.log(t.key, t.views.map((v) => `${v.vid}[${v.members}]@${(v.atUs / 1e6).toFixed(3)}`).join(' '), 'stops', t.stops.map((x) => (x / 1e6).toFixed(3)));
for (const l of c.faultLog) if (/total|crash|start|stop/.test(l)) console.log(l);
