// Keys: search, filter by status, sort by column, page through; create, edit, revoke.
import { confirmAction } from "../dialogs";
import { element } from "../elements";
import { keys, teams, users } from "./api";
import { dateTime, keyStart, limit, money } from "./format";
import { editKey } from "./key-form";
import type { KeyView, Team, User } from "./types";
import {
  badge,
  type Column,
  debounce,
  selectField,
  statusLine,
  table,
  viewHeader,
  whileBusy,
  withProgress,
} from "./ui";
import type { View } from "./view";

const PAGE = 25;

export class KeysView implements View {
  readonly root = element("section", {
    className: "view keys-view",
    "aria-labelledby": "keys-title",
  });
  private readonly status = statusLine();
  private readonly results = element("div", { className: "results" });
  private readonly pager = element("nav", { className: "pager", "aria-label": "Key pages" });
  private readonly search = element("input", {
    id: "keys-search",
    type: "search",
    placeholder: "Search names, prefixes, owners",
    autocomplete: "off",
  });
  private readonly statusFilter = selectField("keys", "status", "Status", [
    ["active", "Active"],
    ["all", "All"],
    ["revoked", "Revoked"],
    ["expired", "Expired"],
  ]);
  private sort = "created_at";
  private order: "asc" | "desc" = "desc";
  private offset = 0;
  private loads = 0;

  constructor() {
    const create = element(
      "button",
      { type: "button", className: "button primary", id: "create-key" },
      "Create key",
    );
    create.addEventListener("click", () => void this.create(create));
    const heading = viewHeader("Keys", create);
    heading.querySelector("h1")?.setAttribute("id", "keys-title");
    const searchField = element(
      "div",
      { className: "field grow" },
      element("label", { for: "keys-search" }, "Search"),
      this.search,
    );
    const refilter = () => {
      this.offset = 0;
      void this.load();
    };
    this.search.addEventListener("input", debounce(refilter));
    this.statusFilter.select.addEventListener("change", refilter);
    this.root.append(
      heading,
      element(
        "form",
        { className: "filters", role: "search" },
        searchField,
        this.statusFilter.wrap,
      ),
      this.status,
      this.results,
      this.pager,
    );
    this.root.querySelector("form")?.addEventListener("submit", (event) => event.preventDefault());
  }

  async start(): Promise<void> {
    await this.load();
  }

  stop(): void {}

  private async load(): Promise<void> {
    const load = ++this.loads;
    const page = await withProgress(this.root, this.status, () =>
      keys.list({
        q: this.search.value.trim() || undefined,
        status: this.statusFilter.select.value,
        sort: this.sort,
        order: this.order,
        limit: PAGE,
        offset: this.offset,
      }),
    ).catch(() => null);
    if (page === null || load !== this.loads) return; // failed (shown) or overtaken by a newer load
    this.results.replaceChildren(
      table("Keys", this.columns(), page.keys, {
        empty: "No keys match.",
        sorted: { sort: this.sort, order: this.order },
        onSort: (sort) => {
          // A column again flips its order; a new one starts where a reader looks first:
          // names A to Z, figures and dates largest and newest first.
          const first = sort === "name" ? "asc" : "desc";
          const flipped = this.order === "desc" ? "asc" : "desc";
          this.order = this.sort === sort ? flipped : first;
          this.sort = sort;
          void this.load();
        },
      }),
    );
    this.renderPager(page.total);
  }

  private columns(): Column<KeyView>[] {
    return [
      {
        title: "Name",
        sort: "name",
        cell: (key) => element("span", { className: "key-name" }, key.name),
      },
      { title: "Key", cell: (key) => element("code", {}, keyStart(key.prefix)) },
      { title: "Status", cell: (key) => badge(key.status) },
      {
        title: "Models",
        cell: (key) =>
          key.models.length
            ? element("code", { className: "key-models" }, key.models.join(", "))
            : "all",
      },
      {
        title: "Owner",
        cell: (key) => [key.owner_team, key.owner_user].filter(Boolean).join(" / ") || "—",
      },
      {
        title: "Limits",
        cell: (key) => [limit(key.rpm, "rpm"), limit(key.tpm, "tpm")].join(" · "),
      },
      {
        title: "Budget",
        numeric: true,
        cell: (key) =>
          budgetText(key),
      },
      { title: "Spend", sort: "spend", numeric: true, cell: (key) => money(key.spend_usd ?? null) },
      { title: "Created", sort: "created_at", cell: (key) => dateTime(key.created_at) },
      { title: "Actions", cell: (key) => this.actions(key) },
    ];
  }

  private actions(key: KeyView): HTMLElement {
    const edit = element(
      "button",
      { type: "button", className: "button small", "aria-label": `Edit ${key.name}` },
      "Edit",
    );
    edit.addEventListener("click", () => void this.edit(key, edit));
    const cell = element("div", { className: "row-actions" }, edit);
    if (key.status !== "revoked") {
      const revoke = element(
        "button",
        {
          type: "button",
          className: "button small danger-quiet",
          "aria-label": `Revoke ${key.name}`,
        },
        "Revoke",
      );
      revoke.addEventListener("click", () => void this.revoke(key));
      cell.append(revoke);
    }
    return cell;
  }

  private renderPager(total: number): void {
    const previous = element(
      "button",
      { type: "button", className: "button small", disabled: this.offset === 0 },
      "Previous",
    );
    const next = element(
      "button",
      { type: "button", className: "button small", disabled: this.offset + PAGE >= total },
      "Next",
    );
    previous.addEventListener("click", () => {
      this.offset = Math.max(0, this.offset - PAGE);
      void this.load();
    });
    next.addEventListener("click", () => {
      this.offset += PAGE;
      void this.load();
    });
    const first = total === 0 ? 0 : this.offset + 1;
    const last = Math.min(total, this.offset + PAGE);
    this.pager.replaceChildren(
      previous,
      element("span", { className: "hint" }, `${first}–${last} of ${total}`),
      next,
    );
  }

  /** Suggestions for the owner fields; the dialog works without them. */
  private async owners(): Promise<[string[], string[]]> {
    const [teamList, userList] = await Promise.all([
      teams.list().catch((): Team[] => []),
      users.list().catch((): User[] => []),
    ]);
    return [teamList.map((team) => team.name), userList.map((user) => user.email)];
  }

  private async create(button: HTMLButtonElement): Promise<void> {
    const [teamNames, emails] = await whileBusy(button, "Opening…", () => this.owners());
    if (await editKey(null, teamNames, emails)) await this.load();
  }

  private async edit(key: KeyView, button: HTMLButtonElement): Promise<void> {
    const [teamNames, emails] = await whileBusy(button, "Opening…", () => this.owners());
    if (await editKey(key, teamNames, emails)) await this.load();
  }

  private async revoke(key: KeyView): Promise<void> {
    const sure = await confirmAction(
      `Revoke the key “${key.name}” (${keyStart(key.prefix)})? Calls with it are refused within seconds; this cannot be undone.`,
      "Revoke",
    );
    if (!sure) return;
    await withProgress(this.root, this.status, () => keys.revoke(key.id), "Revoking…").catch(
      () => null,
    );
    await this.load();
  }
}

/** "$5.00 / month", "1,000 tokens / day", both joined, or a dash. */
export function budgetText(
  key: Pick<KeyView, "budget_usd" | "budget_tokens" | "budget_period">,
): string {
  const parts: string[] = [];
  if (key.budget_usd !== null) parts.push(money(key.budget_usd));
  if (key.budget_tokens !== null) parts.push(limit(key.budget_tokens, "tokens"));
  return parts.length ? `${parts.join(" and ")} / ${key.budget_period}` : "—";
}
