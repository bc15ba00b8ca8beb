import t from 'tap';
import { latencyCurveSpec, renderSvg, svgToPng } from '../../bench/chart.js';

t.test('a curve renders to SVG with its title and to a PNG', async (t) => {
  const points = [10, 100, 1000].map((x, i) => ({ target: 'etcd', x, p50_ms: 1 + i, p99_ms: 5 + i, ops_per_s: 100 }));
  const svg = await renderSvg(latencyCurveSpec('past reads vs history', 'versions', points));
  t.match(svg, /^<svg/);
  t.match(svg, /past reads vs history/);
  t.match(svg, /etcd p99/, 'one legend entry per line');
  const png = svgToPng(svg, 400);
  t.same([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  t.equal(png.readUInt32BE(16), 400, 'PNG width as asked');
});
