// Usage and spend: charts over time, totals, top keys and models by spend, and each
// key's and team's budget burn-down — all from the hourly roll-ups behind /admin/api/usage.
import { element } from "../elements";
import { health, usage } from "./api";
import { type Line, TimeChart } from "./charts";
import { count, dayRange, daysAgo, milliseconds, money, shortCount, spend } from "./format";
import { KeyNames, KeyPicker, TeamPicker } from "./pickers";
import type {
  Budget,
  Bucket,
  TopRow,
  UsageFigures,
  UsageFilters,
  UsagePoint,
  UsageSeries,
} from "./types";
import { field, filterBox, selectField, statusLine, table, viewHeader, withProgress } from "./ui";
import type { View } from "./view";

const DAY = 86_400;
const STEP: Record<Bucket, number> = { hour: 3600, day: DAY };
/** More buckets than this are not filled in (the chart draws the points it has). */
const MOST_BUCKETS = 5000;

/** Buckets without traffic are absent from the API's answer: counts there are zero,
 *  percentiles unknown. Filled in up to now. */
function filled(series: UsageSeries): UsagePoint[] {
  const step = STEP[series.bucket];
  const start = Math.floor(series.from / step) * step;
  const end = Math.min(series.to, Date.now() / 1000); // no empty buckets in the future
  if ((end - start) / step > MOST_BUCKETS) return series.points;
  const byTime = new Map(series.points.map((point) => [point.t, point]));
  const points: UsagePoint[] = [];
  for (let t = start; t < end; t += step) {
    const empty: UsagePoint = {
      t,
      requests: 0,
      errors: 0,
      prompt_tokens: 0,
      completion_tokens: 0,
      cached_tokens: 0,
      cost_usd: 0,
      unpriced_requests: 0,
      latency_p50_ms: null,
      latency_p95_ms: null,
      ttft_p50_ms: null,
      ttft_p95_ms: null,
    };
    points.push(byTime.get(t) ?? empty);
  }
  const placed = new Set(points.map((point) => point.t));
  const offGrid = series.points.filter((point) => !placed.has(point.t));
  return offGrid.length ? [...points, ...offGrid].sort((a, b) => a.t - b.t) : points;
}

export class UsageView implements View {
  readonly root = element("section", {
    className: "view usage-view",
    "aria-labelledby": "usage-title",
  });
  private readonly status = statusLine();
  private readonly totals = element("div", { className: "totals", "aria-label": "Totals" });
  private readonly charts = element("div", { className: "chart-grid" });
  private readonly tops = element("div", { className: "two-columns" });
  private readonly budgets = element("div", { className: "chart-grid" });
  private drawn: TimeChart[] = [];
  private readonly from = field("usage", "from", "From", { type: "date" });
  private readonly to = field("usage", "to", "To", { type: "date" });
  private readonly bucket = selectField("usage", "bucket", "Bucket", [
    ["hour", "Hour"],
    ["day", "Day"],
  ]);
  private readonly key = new KeyPicker("usage", new KeyNames());
  private readonly team = new TeamPicker("usage");
  private readonly model = field("usage", "model", "Model", {
    autocomplete: "off",
    placeholder: "any",
  });
  private readonly provider = field("usage", "provider", "Provider", {
    list: "usage-providers",
    autocomplete: "off",
    placeholder: "any",
  });
  private readonly alias = field("usage", "alias", "Alias", {
    list: "usage-aliases",
    autocomplete: "off",
    placeholder: "any",
  });
  private readonly providers = element("datalist", { id: "usage-providers" });
  private readonly aliases = element("datalist", { id: "usage-aliases" });
  private loads = 0;

  constructor() {
    const heading = viewHeader("Usage and spend");
    heading.querySelector("h1")?.setAttribute("id", "usage-title");
    this.from.input.value = daysAgo(6);
    this.to.input.value = daysAgo(0);
    const apply = element("button", { type: "submit", className: "button primary" }, "Apply");
    const filters = element(
      "form",
      { className: "filters" },
      this.from.wrap,
      this.to.wrap,
      this.bucket.wrap,
      this.key.wrap,
      this.team.wrap,
      this.model.wrap,
      this.provider.wrap,
      this.alias.wrap,
      this.providers,
      this.aliases,
      apply,
    );
    filters.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.load();
    });
    this.bucket.select.addEventListener("change", () => void this.load());
    this.key.onPick(() => void this.load());
    this.team.onPick(() => void this.load());
    this.root.append(
      heading,
      filterBox(filters),
      this.status,
      this.totals,
      this.charts,
      element("h2", {}, "Top spenders"),
      this.tops,
      element("h2", {}, "Budget burn-down"),
      this.budgets,
    );
  }

  async start(): Promise<void> {
    void this.fillChoices();
    await this.load();
  }

  stop(): void {
    for (const chart of this.drawn) chart.destroy();
    this.drawn = [];
  }

  private async filters(): Promise<UsageFilters> {
    return {
      ...dayRange(this.from.input.value, this.to.input.value),
      key_id: await this.key.keyId(),
      team: this.team.team(),
      model: this.model.input.value.trim() || undefined,
      provider: this.provider.input.value.trim() || undefined,
      alias: this.alias.input.value.trim() || undefined,
    };
  }

  /** The pickers' first suggestions and the provider and alias ones: optional extras. */
  private async fillChoices(): Promise<void> {
    const [, , gateway] = await Promise.all([
      this.key.refresh(),
      this.team.refresh(),
      health().catch(() => null),
    ]);
    for (const name of gateway?.providers ?? [])
      this.providers.append(element("option", { value: name }));
    for (const name of gateway?.aliases ?? [])
      this.aliases.append(element("option", { value: name }));
  }

  private async load(): Promise<void> {
    const load = ++this.loads;
    const bucket = this.bucket.select.value as Bucket;
    const answers = await withProgress(this.root, this.status, async () => {
      const filters = await this.filters();
      return Promise.all([
        usage.series(bucket, filters),
        usage.totals(filters),
        usage.top("key", 10, filters),
        usage.top("model", 10, filters),
        usage.budgets(),
      ]);
    }).catch(() => null);
    if (load !== this.loads) return;
    if (answers === null) {
      // The error is in the status line; figures of another range must not stay beside
      // the range just asked for.
      this.stop();
      const gone = () => element("p", { className: "hint" }, "Not loaded: see the error above.");
      this.totals.replaceChildren(gone());
      this.charts.replaceChildren();
      this.tops.replaceChildren();
      this.budgets.replaceChildren();
      this.root.dataset.loaded = "failed";
      return;
    }
    const [series, totals, topKeys, topModels, budgets] = answers;
    this.showTotals(totals);
    this.stop();
    this.showSeries(series);
    this.showTops(topKeys, topModels);
    this.showBudgets(budgets);
    this.root.dataset.loaded = String(load);
  }

  private showTotals(totals: UsageFigures): void {
    const tile = (label: string, value: string) =>
      element(
        "div",
        { className: "tile" },
        element("span", { className: "tile-label" }, label),
        element("span", { className: "tile-value" }, value),
      );
    const errorRate = totals.requests
      ? `${((100 * totals.errors) / totals.requests).toFixed(1)} %`
      : "—";
    this.totals.replaceChildren(
      tile("Requests", count(totals.requests)),
      tile("Errors", `${count(totals.errors)} (${errorRate})`),
      tile(
        "Tokens in / out",
        `${shortCount(totals.prompt_tokens)} / ${shortCount(totals.completion_tokens)}`,
      ),
      tile("Cached tokens", shortCount(totals.cached_tokens)),
      tile("Cost", spend(totals.cost_usd, totals.unpriced_requests)),
      tile(
        "Latency p50 / p95",
        `${milliseconds(totals.latency_p50_ms)} / ${milliseconds(totals.latency_p95_ms)}`,
      ),
      tile(
        "TTFT p50 / p95",
        `${milliseconds(totals.ttft_p50_ms)} / ${milliseconds(totals.ttft_p95_ms)}`,
      ),
    );
  }

  private showSeries(series: UsageSeries): void {
    const points = filled(series);
    const times = points.map((point) => point.t);
    const of = (name: keyof UsageFigures) => points.map((point) => point[name] as number | null);
    const chart = (
      title: string,
      lines: Line[],
      format: (value: number) => string,
      whole = false,
    ) => new TimeChart({ title, times, lines, format, whole });
    const made = [
      chart(
        "Requests and errors",
        [
          { label: "Requests", values: of("requests"), color: "--chart-1" },
          { label: "Errors", values: of("errors"), color: "--chart-err" },
        ],
        shortCount,
        true,
      ),
      chart(
        "Tokens",
        [
          { label: "Input", values: of("prompt_tokens"), color: "--chart-1" },
          { label: "Output", values: of("completion_tokens"), color: "--chart-2" },
          { label: "Cached", values: of("cached_tokens"), color: "--chart-3" },
        ],
        shortCount,
        true,
      ),
      chart("Cost", [{ label: "Cost (USD)", values: of("cost_usd"), color: "--chart-2" }], money),
      chart(
        "Latency",
        [
          { label: "p50", values: of("latency_p50_ms"), color: "--chart-1" },
          { label: "p95", values: of("latency_p95_ms"), color: "--chart-4", dashed: true },
        ],
        milliseconds,
      ),
      chart(
        "Time to first token",
        [
          { label: "p50", values: of("ttft_p50_ms"), color: "--chart-3" },
          { label: "p95", values: of("ttft_p95_ms"), color: "--chart-4", dashed: true },
        ],
        milliseconds,
      ),
    ];
    this.charts.replaceChildren(...made.map((one) => one.root));
    for (const one of made) one.draw();
    this.drawn.push(...made);
    this.charts.dataset.points = String(series.points.length);
  }

  private showTops(topKeys: TopRow[], topModels: TopRow[]): void {
    // A group with no name: calls without a key (the master key, open mode), or calls
    // refused before a model was routed (a limit, a budget, a model the key may not use).
    const columns = (title: string, none: string) => [
      { title, cell: (row: TopRow) => row.name ?? row.group ?? none },
      { title: "Requests", numeric: true, cell: (row: TopRow) => count(row.requests) },
      { title: "Tokens", numeric: true, cell: (row: TopRow) => shortCount(row.tokens) },
      {
        title: "Cost",
        numeric: true,
        cell: (row: TopRow) => spend(row.cost_usd, row.unpriced_requests),
      },
    ];
    this.tops.replaceChildren(
      element(
        "div",
        { className: "top-keys" },
        element("h3", {}, "Keys"),
        table("Top keys by spend", columns("Key", "(no key)"), topKeys, { empty: "No traffic in this range." }),
      ),
      element(
        "div",
        { className: "top-models" },
        element("h3", {}, "Models"),
        table("Top models by spend", columns("Model", "(refused before routing)"), topModels, {
          empty: "No traffic in this range.",
        }),
      ),
    );
  }

  private showBudgets(budgets: Budget[]): void {
    if (budgets.length === 0) {
      this.budgets.replaceChildren(
        element("p", { className: "hint" }, "No key or team has a USD budget."),
      );
      return;
    }
    const made = budgets.map((budget) => {
      const [start, end] = budgetSpan(budget, Date.now() / 1000);
      // The period from its start (nothing spent yet, but for a total budget's carry)
      // to its end, so even one day's spend shows where in the period it stands.
      const points = budget.points.filter((point) => point.t >= start && point.t <= end);
      const opening = budget.budget_period === "total" ? null : 0;
      const times = [start, ...points.map((point) => point.t), end];
      const spent = [opening, ...points.map((point) => point.spent_usd), null];
      if (points.length && points[0].t === start) {
        times.shift();
        spent.shift();
      }
      const limit = budget.budget_usd;
      const owner = `${budget.kind === "team" ? "Team" : "Key"} ${budget.name}`;
      const lines: Line[] = [{ label: "Spent", values: spent, color: "--chart-2" }];
      if (limit !== null) {
        lines.push({
          label: "Budget",
          values: times.map(() => limit),
          color: "--chart-err",
          dashed: true,
        });
      }
      const chart = new TimeChart({
        title:
          limit === null
            ? `${owner}: ${money(budget.spent_usd)} spent (${budget.budget_period}, no budget)`
            : `${owner}: ${money(budget.spent_usd)} of ${money(limit)} (${budget.budget_period})`,
        times,
        span: [start, end],
        lines,
        format: money,
        height: 160,
      });
      chart.root.classList.toggle("over-budget", limit !== null && budget.spent_usd >= limit);
      return chart;
    });
    this.budgets.replaceChildren(...made.map((one) => one.root));
    for (const one of made) one.draw();
    this.drawn.push(...made);
  }
}

/** A budget chart's time axis: its UTC day or month, or a total budget's shown days. */
export function budgetSpan(budget: Budget, now: number): [number, number] {
  const start = budget.period_start;
  if (budget.budget_period === "day") return [start, start + DAY];
  if (budget.budget_period === "month") {
    const opened = new Date(start * 1000);
    const next = Date.UTC(opened.getUTCFullYear(), opened.getUTCMonth() + 1, 1) / 1000;
    return [start, next];
  }
  const first = budget.points.length ? budget.points[0].t : start;
  const last = budget.points.length ? budget.points[budget.points.length - 1].t : first;
  return [first, Math.max(now, last, first + DAY)];
}
