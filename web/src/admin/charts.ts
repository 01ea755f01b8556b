// Time-series charts drawn by uPlot (small, fast canvas charts; we draw none by hand).
// Colours come from the page's CSS variables, so a theme switch redraws them to match.
import uPlot from "uplot";
import { element } from "../elements";

export interface Line {
  label: string;
  values: (number | null)[];
  /** A CSS variable naming the line's colour, e.g. ``--chart-1``. */
  color: string;
  dashed?: boolean;
}

export interface ChartSpec {
  title: string;
  times: number[];
  lines: Line[];
  format: (value: number) => string;
  /** The values are counts (requests, tokens): ticks only at whole numbers. */
  whole?: boolean;
  height?: number;
  /** The time axis's span in epoch seconds; by default the first time to the last. */
  span?: [number, number];
}

/** Where a line has a value whose neighbours have none: a lone point no segment joins
 * (``spanGaps`` joins values across gaps, but one value alone makes no segment). */
export function lonePoints(values: (number | null)[]): number[] {
  const known = values.filter((value) => value !== null).length;
  if (known !== 1) return [];
  return [values.findIndex((value) => value !== null)];
}

/** Tick steps for counts: uPlot's own steps for numbers, less the fractions
 * (1, 2, 5, 10, 20, 25…). */
const WHOLE_STEPS = Array.from({ length: 16 }, (_, exponent) =>
  [1, 2, 2.5, 5].map((multiple) => multiple * 10 ** exponent),
)
  .flat()
  .filter(Number.isInteger);

const charts = new Set<TimeChart>();

function cssColor(variable: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(variable).trim() || "#888";
}

/** One chart in a titled figure; it follows its container's width and the page's theme. */
export class TimeChart {
  readonly root: HTMLElement;
  private plot: uPlot | null = null;
  private readonly body: HTMLElement;
  private readonly resize: ResizeObserver;

  constructor(private readonly spec: ChartSpec) {
    this.body = element("div", { className: "chart-body" });
    this.root = element(
      "figure",
      { className: "chart", "data-chart": spec.title },
      element("figcaption", {}, spec.title),
      this.body,
    );
    this.resize = new ResizeObserver(() => this.fit());
    charts.add(this);
  }

  /** Draws once the figure is in the page (uPlot measures its container). */
  draw(): void {
    this.plot?.destroy();
    const { spec } = this;
    const text = cssColor("--text-muted");
    const grid = cssColor("--border");
    const axis = (extra: uPlot.Axis = {}): uPlot.Axis => ({
      stroke: text,
      grid: { stroke: grid, width: 1 },
      ticks: { stroke: grid, width: 1 },
      ...extra,
    });
    const values = (_u: uPlot, splits: number[]) => {
      const labels = splits.map((value) => spec.format(value));
      // What the canvas shows, for a reader of the page's text (and its tests).
      this.root.dataset.yTicks = JSON.stringify(labels);
      return labels;
    };
    const options: uPlot.Options = {
      width: Math.max(this.body.clientWidth, 200),
      height: spec.height ?? 200,
      series: [
        {},
        ...spec.lines.map((line) => ({
          label: line.label,
          stroke: cssColor(line.color),
          width: 2,
          dash: line.dashed ? [6, 4] : undefined,
          // Percentiles are unknown (null) where a bucket had no traffic: join across it.
          spanGaps: true,
          value: (_u: uPlot, value: number | null) => (value === null ? "—" : spec.format(value)),
          points:
            spec.times.length < 3
              ? { show: true }
              : { show: true, filter: lonePoints(line.values), size: 7 },
        })),
      ],
      axes: [axis(), axis({ values, size: 64, ...(spec.whole ? { incrs: WHOLE_STEPS } : {}) })],
      scales: {
        ...(spec.span ? { x: { time: true, auto: false, range: spec.span } } : {}),
        y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] },
      },
      legend: { live: true },
    };
    const data: uPlot.AlignedData = [spec.times, ...spec.lines.map((line) => line.values)];
    this.plot = new uPlot(options, data, this.body);
    this.resize.observe(this.body);
    this.root.dataset.points = String(spec.times.length);
    if (spec.span) [this.root.dataset.from, this.root.dataset.to] = spec.span.map(String);
  }

  private fit(): void {
    const width = Math.max(this.body.clientWidth, 200);
    if (this.plot && Math.abs(this.plot.width - width) > 1) {
      this.plot.setSize({ width, height: this.plot.height });
    }
  }

  destroy(): void {
    this.resize.disconnect();
    this.plot?.destroy();
    this.plot = null;
    charts.delete(this);
  }
}

/** Redraws every chart in the page's current colours (after a theme change). */
export function redrawCharts(): void {
  for (const chart of charts) chart.draw();
}
