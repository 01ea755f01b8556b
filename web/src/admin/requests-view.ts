// The request log: usage records newest first, filtered on the server, paged by the
// API's keyset cursor (next, and back through the cursors already seen); a row opens
// the record's detail.
import { element } from "../elements";
import { type RequestQuery, requests } from "./api";
import { count, dateTime, dayRange, milliseconds, money, orDash } from "./format";
import type { UsageRecord } from "./types";
import { KeyNames, KeyPicker } from "./pickers";
import {
  badge,
  field,
  filterBox,
  selectField,
  statusLine,
  table,
  viewHeader,
  withProgress,
} from "./ui";
import type { View } from "./view";

export class RequestsView implements View {
  readonly root = element("section", {
    className: "view requests-view",
    "aria-labelledby": "requests-title",
  });
  private readonly status = statusLine();
  private readonly results = element("div", { className: "results" });
  private readonly pager = element("nav", {
    className: "pager",
    "aria-label": "Request log pages",
  });
  private readonly keyNames = new KeyNames();
  private readonly key = new KeyPicker("log", this.keyNames);
  private readonly inputs = {
    model: field("log", "model", "Model", { autocomplete: "off" }),
    provider: field("log", "provider", "Provider", { autocomplete: "off" }),
    status: field("log", "status", "Status", {
      type: "number",
      min: "100",
      max: "599",
      inputmode: "numeric",
    }),
    error_type: field("log", "error_type", "Error type", { autocomplete: "off" }),
    from: field("log", "from", "From", { type: "date" }),
    to: field("log", "to", "To", { type: "date" }),
  };
  private readonly rows = selectField("log", "limit", "Rows", [
    ["50", "50"],
    ["25", "25"],
    ["100", "100"],
    ["200", "200"],
  ]);
  /** The cursor of each page shown so far: ``[null, c1, c2…]``; the last is the current page's. */
  private cursors: (string | null)[] = [null];
  private loads = 0;

  constructor() {
    const heading = viewHeader("Request log");
    heading.querySelector("h1")?.setAttribute("id", "requests-title");
    const apply = element("button", { type: "submit", className: "button primary" }, "Apply");
    const form = element(
      "form",
      { className: "filters" },
      this.key.wrap,
      ...Object.values(this.inputs).map((one) => one.wrap),
      this.rows.wrap,
      apply,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.cursors = [null];
      void this.load();
    });
    this.root.append(heading, filterBox(form), this.status, this.results, this.pager);
  }

  async start(): Promise<void> {
    void this.key.refresh();
    await this.load();
  }

  stop(): void {
    document.getElementById("record-dialog")?.remove();
  }

  private async query(): Promise<RequestQuery> {
    const value = (name: keyof typeof this.inputs) =>
      this.inputs[name].input.value.trim() || undefined;
    return {
      key_id: await this.key.keyId(),
      model: value("model"),
      provider: value("provider"),
      status: value("status"),
      error_type: value("error_type"),
      ...dayRange(this.inputs.from.input.value, this.inputs.to.input.value),
      limit: Number(this.rows.select.value),
      cursor: this.cursors[this.cursors.length - 1],
    };
  }

  private async load(): Promise<void> {
    const load = ++this.loads;
    const page = await withProgress(this.root, this.status, async () => {
      const found = await requests.list(await this.query());
      // Every key of the page by name, however far down the list of names it is.
      await this.keyNames.lookUp(found.requests.map((record) => record.key_id));
      return found;
    }).catch(() => null);
    if (page === null || load !== this.loads) return;
    this.results.replaceChildren(
      table<UsageRecord>(
        "Requests, newest first",
        [
          { title: "Time", cell: (record) => dateTime(record.time) },
          { title: "Key", cell: (record) => this.keyNames.name(record.key_id) },
          {
            title: "Model",
            // Refused before it was routed: the name the caller asked for.
            cell: (record) => orDash(record.model ?? record.alias),
          },
          { title: "Provider", cell: (record) => orDash(record.provider) },
          { title: "Status", cell: (record) => badge(String(record.status)) },
          { title: "Error", cell: (record) => orDash(record.error_type) },
          {
            title: "Tokens",
            numeric: true,
            cell: (record) => count(record.prompt_tokens + record.completion_tokens),
          },
          {
            title: "Cost",
            numeric: true,
            // A model with no price: the cost is unknown, not $0.00.
            cell: (record) => (record.unpriced ? "unpriced" : money(record.cost_usd)),
          },
          { title: "Latency", numeric: true, cell: (record) => milliseconds(record.latency_ms) },
        ],
        page.requests,
        {
          empty: "No requests match.",
          onOpen: (record) => void this.openRecord(record),
          rowLabel: (record) => `Request ${record.request_id} at ${dateTime(record.time)}`,
        },
      ),
    );
    this.renderPager(page.next_cursor);
  }

  private renderPager(nextCursor: string | null): void {
    const previous = element(
      "button",
      { type: "button", className: "button small", disabled: this.cursors.length < 2 },
      "Newer",
    );
    const next = element(
      "button",
      { type: "button", className: "button small", disabled: nextCursor === null },
      "Older",
    );
    previous.addEventListener("click", () => {
      this.cursors.pop();
      void this.load();
    });
    next.addEventListener("click", () => {
      this.cursors.push(nextCursor);
      void this.load();
    });
    this.pager.replaceChildren(
      previous,
      element("span", { className: "hint" }, `Page ${this.cursors.length}`),
      next,
    );
  }

  private async openRecord(listed: UsageRecord): Promise<void> {
    document.getElementById("record-dialog")?.remove();
    const list = element("dl", { className: "record" });
    const close = element("button", { type: "button", className: "button primary" }, "Close");
    const dialog = element(
      "dialog",
      { id: "record-dialog", className: "wide-dialog", "aria-labelledby": "record-title" },
      element(
        "div",
        { className: "dialog-form" },
        element("h2", { id: "record-title" }, "Request"),
        list,
        element("div", { className: "dialog-actions" }, close),
      ),
    );
    close.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
    list.replaceChildren(element("dd", {}, "Loading…"));
    const record = await requests.get(listed.id).catch(() => listed);
    list.replaceChildren(
      ...Object.entries(record).flatMap(([name, value]) => [
        element("dt", {}, name),
        element(
          "dd",
          {},
          name === "time"
            ? `${dateTime(value as number)} (${String(value)})`
            : value === null
              ? "—"
              : String(value),
        ),
      ]),
    );
    close.focus();
  }
}
