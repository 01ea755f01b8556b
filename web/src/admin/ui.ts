// The dashboard's building blocks: loading states, tables, notices and form fields.
// Every value from the API goes into the page as text, never as HTML.
import { element } from "../elements";

/** Loads in flight per region: it stays busy until the last one ends, whichever ends first. */
const inFlight = new WeakMap<HTMLElement, number>();

/** Marks ``region`` busy while ``work`` runs and shows "Loading…" in ``status``. */
export async function withProgress<T>(
  region: HTMLElement,
  status: HTMLElement,
  work: () => Promise<T>,
  label = "Loading…",
): Promise<T> {
  inFlight.set(region, (inFlight.get(region) ?? 0) + 1);
  region.setAttribute("aria-busy", "true");
  status.hidden = false;
  status.className = "view-status loading";
  status.textContent = label;
  try {
    const result = await work();
    status.hidden = true;
    status.textContent = "";
    return result;
  } catch (error) {
    status.className = "view-status failed";
    status.textContent = error instanceof Error ? error.message : String(error);
    throw error;
  } finally {
    const left = (inFlight.get(region) ?? 1) - 1;
    inFlight.set(region, left);
    if (left === 0) region.removeAttribute("aria-busy");
  }
}

/** A button that is disabled and says ``busyLabel`` while ``work`` runs. */
export async function whileBusy<T>(
  button: HTMLButtonElement,
  busyLabel: string,
  work: () => Promise<T>,
): Promise<T> {
  const label = button.textContent ?? "";
  button.disabled = true;
  button.textContent = busyLabel;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.textContent = label;
  }
}

export function statusLine(): HTMLParagraphElement {
  return element("p", { className: "view-status", role: "status", hidden: true });
}

export function viewHeader(title: string, ...actions: Node[]): HTMLElement {
  return element("div", { className: "view-head" }, element("h1", {}, title), ...actions);
}

/** A word longer than a text column is wide (``td`` in admin.css): its cell breaks it anywhere. */
const LONG_WORD = /\S{31}/;

export interface Column<Row> {
  title: string;
  cell: (row: Row) => Node | string;
  /** The API's sort name, when the column sorts. */
  sort?: string;
  numeric?: boolean;
}

export interface SortState {
  sort: string;
  order: "asc" | "desc";
}

/** A table of ``rows``; sortable columns get header buttons that call ``onSort``. */
export function table<Row>(
  caption: string,
  columns: Column<Row>[],
  rows: Row[],
  options: {
    empty?: string;
    sorted?: SortState;
    onSort?: (sort: string) => void;
    onOpen?: (row: Row) => void;
    rowLabel?: (row: Row) => string;
  } = {},
): HTMLElement {
  const head = element(
    "tr",
    {},
    ...columns.map((column) => {
      const th = element("th", { scope: "col", className: column.numeric ? "numeric" : "" });
      if (column.sort && options.onSort) {
        const active = options.sorted?.sort === column.sort;
        if (active)
          th.setAttribute(
            "aria-sort",
            options.sorted?.order === "asc" ? "ascending" : "descending",
          );
        const arrow = active ? (options.sorted?.order === "asc" ? " ▲" : " ▼") : "";
        const button = element(
          "button",
          { type: "button", className: "sort" },
          column.title + arrow,
        );
        const sortName = column.sort;
        button.addEventListener("click", () => options.onSort?.(sortName));
        th.append(button);
      } else {
        th.textContent = column.title;
      }
      return th;
    }),
  );
  const body = element("tbody");
  for (const row of rows) {
    const tr = element(
      "tr",
      {},
      ...columns.map((column) => {
        const td = element(
          "td",
          { className: column.numeric ? "numeric" : "", "data-label": column.title },
          column.cell(row),
        );
        if (LONG_WORD.test(td.textContent ?? "")) td.classList.add("long-words");
        return td;
      }),
    );
    if (options.onOpen) {
      const open = options.onOpen;
      tr.classList.add("openable");
      tr.tabIndex = 0;
      tr.setAttribute("aria-label", options.rowLabel?.(row) ?? "Open");
      tr.addEventListener("click", (event) => {
        if ((event.target as HTMLElement).closest("button, a, input")) return;
        open(row);
      });
      tr.addEventListener("keydown", (event) => {
        if (event.target === tr && (event.key === "Enter" || event.key === " ")) {
          event.preventDefault();
          open(row);
        }
      });
    }
    body.append(tr);
  }
  if (rows.length === 0) {
    body.append(
      element(
        "tr",
        {},
        element(
          "td",
          { colspan: String(columns.length), className: "empty-row" },
          options.empty ?? "Nothing yet.",
        ),
      ),
    );
  }
  return element(
    "div",
    { className: "table-wrap" },
    element(
      "table",
      {},
      element("caption", { className: "visually-hidden" }, caption),
      element("thead", {}, head),
      body,
    ),
  );
}

/** A labelled input; its ``id`` is ``name`` prefixed by ``scope``. */
export function field(
  scope: string,
  name: string,
  label: string,
  attributes: Record<string, string | boolean | undefined> = {},
): { wrap: HTMLElement; input: HTMLInputElement } {
  const id = `${scope}-${name}`;
  const input = element("input", { id, name, ...attributes });
  const wrap = element("div", { className: "field" }, element("label", { for: id }, label), input);
  return { wrap, input };
}

export function selectField(
  scope: string,
  name: string,
  label: string,
  options: [value: string, text: string][],
): { wrap: HTMLElement; select: HTMLSelectElement } {
  const id = `${scope}-${name}`;
  const select = element(
    "select",
    { id, name },
    ...options.map(([value, text]) => element("option", { value }, text)),
  );
  const wrap = element("div", { className: "field" }, element("label", { for: id }, label), select);
  return { wrap, select };
}

/** A badge such as a key's status, its text also its class. */
export function badge(text: string): HTMLElement {
  return element("span", { className: `badge badge-${text.replace(/[^a-z-]/gi, "")}` }, text);
}

/** A short-lived message under a form or at the top of a view. */
export function showError(target: HTMLElement, error: unknown): void {
  target.hidden = false;
  target.textContent = error instanceof Error ? error.message : String(error);
}

/** A number from an input, ``null`` when it is empty. */
export function numberOrNull(input: HTMLInputElement): number | null {
  const text = input.value.trim();
  if (!text) return null;
  const value = Number(text);
  if (!Number.isFinite(value)) throw new Error(`${input.name}: not a number`);
  return value;
}

/** Calls ``work`` at most once per ``ms`` of quiet (for search boxes). */
export function debounce(work: () => void, ms = 250): () => void {
  let timer: number | undefined;
  return () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(work, ms);
  };
}

/** Filters in a box that folds: open on a wide screen, folded on a phone until asked for. */
export function filterBox(form: HTMLFormElement): HTMLDetailsElement {
  const box = element(
    "details",
    { className: "filter-box" },
    element("summary", {}, "Filters"),
    form,
  );
  const wide = window.matchMedia("(min-width: 721px)");
  box.open = wide.matches;
  wide.addEventListener("change", () => {
    if (wide.matches) box.open = true; // its summary is hidden there: it cannot be reopened
  });
  return box;
}
