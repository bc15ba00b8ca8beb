import { Resvg } from '@resvg/resvg-js';
import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/**
 * Charts for people to look at: a Vega-Lite spec compiled to Vega, rendered headless to SVG by Vega's own
 * SVG renderer, and the SVG rasterised to PNG by resvg (fonts from the system, DejaVu Sans on Debian).
 */

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export function svgToPng(svg: string, widthPx = 1200): Buffer {
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'width', value: widthPx },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  });
  return resvg.render().asPng();
}

/** Widest legend label before Vega cuts it with an ellipsis ("squall-delivered ×100 p99" fits). */
const legendLabelLimitPx = 400;

/** One point of a curve: x (versions, keys, bytes, replicas) against a latency or throughput. */
export interface CurvePoint {
  target: string;
  x: number;
  p50_ms: number | null;
  p99_ms: number | null;
  ops_per_s: number | null;
}

/**
 * A line chart of p50 and p99 latency (solid and dashed lines, one legend entry each) against x (log scale by default), one colour per
 * target; the title says what grows and what is measured.
 */
export function latencyCurveSpec(title: string, xTitle: string, points: readonly CurvePoint[], scales: { xLog?: boolean; yLog?: boolean } = {}): TopLevelSpec {
  const { xLog = true, yLog = false } = scales;
  const values = points.flatMap((p) => [
    ...(p.p50_ms === null ? [] : [{ series: `${p.target} p50`, target: p.target, x: p.x, percentile: 'p50', ms: p.p50_ms }]),
    ...(p.p99_ms === null ? [] : [{ series: `${p.target} p99`, target: p.target, x: p.x, percentile: 'p99', ms: p.p99_ms }]),
  ]);
  return lineChart(title, values, {
    x: { field: 'x', type: 'quantitative', title: xTitle, scale: xLog ? { type: 'log' } : { zero: false } },
    y: { field: 'ms', type: 'quantitative', title: `latency (ms${yLog ? ', log scale' : ''})`, ...(yLog ? { scale: { type: 'log' } } : {}) },
    // one legend entry per line ("etcd p99"); the dash tells the percentile apart in the plot itself
    color: { field: 'series', type: 'nominal', title: null, legend: { labelLimit: legendLabelLimitPx } },
    strokeDash: { field: 'percentile', type: 'nominal', legend: null },
  });
}

/**
 * A line chart of throughput (operations/s) against x (linear by default, ticks at the x values of the
 * points), one colour per target (the series name: e.g. "squall ×100" for batches of 100).
 */
export function throughputCurveSpec(title: string, xTitle: string, points: readonly CurvePoint[], scales: { xLog?: boolean; yLog?: boolean } = {}): TopLevelSpec {
  const { xLog = false, yLog = true } = scales;
  const values = points.flatMap((p) => (p.ops_per_s === null ? [] : [{ target: p.target, x: p.x, ops: p.ops_per_s }]));
  const ticks = [...new Set(values.map((v) => v.x))].sort((a, b) => a - b);
  return lineChart(title, values, {
    x: { field: 'x', type: 'quantitative', title: xTitle, scale: xLog ? { type: 'log' } : { zero: false }, axis: { values: ticks } },
    y: { field: 'ops', type: 'quantitative', title: `operations/s${yLog ? ' (log scale)' : ''}`, ...(yLog ? { scale: { type: 'log' } } : {}) },
    color: { field: 'target', type: 'nominal', title: null, legend: { labelLimit: legendLabelLimitPx } },
  });
}

/** The frame every curve shares: a 640×360 line chart with points on a white background. */
function lineChart(title: string, values: readonly object[], encoding: Record<string, unknown>): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 640,
    height: 360,
    background: 'white',
    data: { values: [...values] },
    mark: { type: 'line', point: true },
    encoding,
  } as TopLevelSpec;
}
