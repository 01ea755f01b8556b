// Live health: each alias's deployments as GET /health reports them, refreshed every
// 5 s while this view is shown and the tab is visible.
import { element } from "../elements";
import { health } from "./api";
import { milliseconds } from "./format";
import type { DeploymentHealth, Health } from "./types";
import { badge, statusLine, table, viewHeader } from "./ui";
import type { View } from "./view";

const EVERY_MS = 5000;

export class HealthView implements View {
  readonly root = element("section", {
    className: "view health-view",
    "aria-labelledby": "health-title",
  });
  private readonly status = statusLine();
  private readonly summary = element("p", { className: "hint" });
  private readonly results = element("div", { className: "results" });
  private readonly updated = element("span", { className: "hint", role: "status" });
  private timer: number | undefined;
  private running = false;
  private readonly onVisibility = () => {
    if (document.visibilityState === "visible" && this.running) void this.refresh();
  };

  constructor() {
    const heading = viewHeader("Live health", this.updated);
    heading.querySelector("h1")?.setAttribute("id", "health-title");
    this.root.append(heading, this.summary, this.status, this.results);
  }

  async start(): Promise<void> {
    this.running = true;
    document.addEventListener("visibilitychange", this.onVisibility);
    this.status.hidden = false;
    this.status.textContent = "Loading…";
    this.root.setAttribute("aria-busy", "true");
    await this.refresh();
  }

  stop(): void {
    this.running = false;
    window.clearTimeout(this.timer);
    document.removeEventListener("visibilitychange", this.onVisibility);
  }

  private async refresh(): Promise<void> {
    window.clearTimeout(this.timer);
    try {
      this.show(await health());
      this.status.hidden = true;
    } catch (problem) {
      this.status.hidden = false;
      this.status.className = "view-status failed";
      this.status.textContent = `Could not reach /health: ${problem instanceof Error ? problem.message : String(problem)}`;
    } finally {
      this.root.removeAttribute("aria-busy");
    }
    if (this.running && document.visibilityState === "visible") {
      this.timer = window.setTimeout(() => void this.refresh(), EVERY_MS);
    }
  }

  private show(gateway: Health): void {
    const minutes = Math.floor(gateway.uptime_seconds / 60);
    this.summary.textContent = `Version ${gateway.version} · up ${minutes} min · providers: ${gateway.providers.join(", ") || "none"}`;
    this.updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    const aliases = Object.entries(gateway.deployments);
    if (aliases.length === 0) {
      this.results.replaceChildren(
        element("p", { className: "hint" }, "No aliases with deployments are configured."),
      );
      return;
    }
    this.results.replaceChildren(
      ...aliases.map(([alias, deployments]) =>
        element(
          "div",
          { className: "health-alias", "data-alias": alias },
          element("h2", {}, alias),
          table<DeploymentHealth>(
            `Deployments of ${alias}`,
            [
              { title: "Deployment", cell: (one) => one.deployment },
              { title: "State", cell: (one) => badge(one.state) },
              {
                title: "Rest left",
                numeric: true,
                cell: (one) =>
                  one.state === "cooling" ? `${one.cooling_for_seconds.toFixed(1)} s` : "—",
              },
              { title: "Why", cell: (one) => one.cooling_because ?? "—" },
              { title: "Rests", numeric: true, cell: (one) => String(one.cooldowns) },
              { title: "In flight", numeric: true, cell: (one) => String(one.in_flight) },
              { title: "Latency", numeric: true, cell: (one) => milliseconds(one.latency_ms) },
              {
                title: "Failures since",
                numeric: true,
                cell: (one) => String(one.recent_failures),
              },
            ],
            deployments,
          ),
        ),
      ),
    );
  }
}
