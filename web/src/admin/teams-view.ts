// Teams: the list, create one with a budget, and one team's budget, members and keys.
import { confirmAction } from "../dialogs";
import { element } from "../elements";
import { keys, teams } from "./api";
import { count, dateTime, keyStart, money } from "./format";
import type { KeyView, Team } from "./types";
import {
  badge,
  field,
  numberOrNull,
  selectField,
  showError,
  statusLine,
  table,
  viewHeader,
  whileBusy,
  withProgress,
} from "./ui";
import type { View } from "./view";

const PERIODS: [string, string][] = [
  ["month", "per month"],
  ["day", "per day"],
  ["total", "in total"],
];
/** How many keys a team's panel lists (the keys view pages through more). */
const TEAM_KEYS = 200;

function budgetText(team: Team): string {
  return team.budget_usd === null
    ? "—"
    : `${money(team.budget_usd)} / ${team.budget_period ?? "month"}`;
}

export class TeamsView implements View {
  readonly root = element("section", {
    className: "view teams-view",
    "aria-labelledby": "teams-title",
  });
  private readonly status = statusLine();
  private readonly list = element("div", { className: "results" });
  private readonly detail = element("section", {
    className: "panel",
    "aria-live": "polite",
    hidden: true,
  });
  private selected: string | null = null;

  constructor() {
    const heading = viewHeader("Teams");
    heading.querySelector("h1")?.setAttribute("id", "teams-title");
    this.root.append(heading, this.createForm(), this.status, this.list, this.detail);
  }

  async start(): Promise<void> {
    await this.load();
  }

  stop(): void {}

  private createForm(): HTMLFormElement {
    const name = field("new-team", "name", "Team name", {
      required: true,
      maxlength: "200",
      autocomplete: "off",
    });
    const budget = field("new-team", "budget_usd", "Budget (USD)", {
      type: "number",
      min: "0",
      step: "any",
    });
    const period = selectField("new-team", "budget_period", "Budget period", PERIODS);
    const submit = element(
      "button",
      { type: "submit", className: "button primary" },
      "Create team",
    );
    const error = element("p", { className: "form-error", role: "alert", hidden: true });
    const form = element(
      "form",
      { className: "filters inline-form", "aria-label": "Create a team" },
      name.wrap,
      budget.wrap,
      period.wrap,
      submit,
      error,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      try {
        const budgetUsd = numberOrNull(budget.input);
        const created = await whileBusy(submit, "Creating…", () =>
          teams.create({
            name: name.input.value.trim(),
            ...(budgetUsd === null
              ? {}
              : { budget_usd: budgetUsd, budget_period: period.select.value }),
          }),
        );
        form.reset();
        this.selected = created.name;
        await this.load();
      } catch (problem) {
        showError(error, problem);
      }
    });
    return form;
  }

  private async load(): Promise<void> {
    const found = await withProgress(this.root, this.status, () => teams.list()).catch(() => null);
    if (found === null) return;
    this.list.replaceChildren(
      table<Team>(
        "Teams",
        [
          { title: "Team", cell: (team) => element("span", { className: "team-name" }, team.name) },
          { title: "Members", numeric: true, cell: (team) => count(team.members.length) },
          { title: "Keys", numeric: true, cell: (team) => count(team.key_count) },
          { title: "Budget", numeric: true, cell: budgetText },
          { title: "Spend", numeric: true, cell: (team) => money(team.spend_usd) },
          { title: "Created", cell: (team) => dateTime(team.created_at) },
        ],
        found,
        {
          empty: "No teams yet.",
          onOpen: (team) => {
            this.selected = team.name;
            void this.showTeam(team);
          },
          rowLabel: (team) => `Open team ${team.name}`,
        },
      ),
    );
    const current = found.find((team) => team.name === this.selected);
    if (current) await this.showTeam(current);
    else this.detail.hidden = true;
  }

  private async showTeam(team: Team): Promise<void> {
    const title = element("h2", { id: "team-detail-title" }, `Team ${team.name}`);
    const remove = element(
      "button",
      { type: "button", className: "button small danger-quiet" },
      "Delete team",
    );
    remove.addEventListener("click", () => void this.removeTeam(team));
    const keyList = element(
      "div",
      { className: "results" },
      element("p", { className: "hint" }, "Loading keys…"),
    );
    this.detail.setAttribute("aria-labelledby", "team-detail-title");
    this.detail.replaceChildren(
      element("div", { className: "view-head" }, title, remove),
      this.budgetForm(team),
      element("h3", {}, "Members"),
      this.members(team),
      this.addMemberForm(team),
      element("h3", {}, "Keys"),
      keyList,
    );
    this.detail.hidden = false;
    const teamKeys = await keys
      .list({ q: team.name, status: "all", limit: TEAM_KEYS })
      .then((page) => page.keys.filter((key) => key.owner_team === team.name))
      .catch((problem: unknown) => problem as Error);
    if (teamKeys instanceof Error) {
      keyList.replaceChildren(element("p", { className: "form-error" }, teamKeys.message));
      return;
    }
    keyList.replaceChildren(
      table<KeyView>(
        `Keys of team ${team.name}`,
        [
          { title: "Name", cell: (key) => key.name },
          { title: "Key", cell: (key) => element("code", {}, keyStart(key.prefix)) },
          { title: "Status", cell: (key) => badge(key.status) },
          { title: "Spend", numeric: true, cell: (key) => money(key.spend_usd ?? null) },
        ],
        teamKeys,
        { empty: "No keys are owned by this team." },
      ),
    );
  }

  private budgetForm(team: Team): HTMLFormElement {
    const budget = field("team-budget", "budget_usd", "Budget (USD, empty: none)", {
      type: "number",
      min: "0",
      step: "any",
      value: team.budget_usd?.toString() ?? "",
    });
    const period = selectField("team-budget", "budget_period", "Budget period", PERIODS);
    period.select.value = team.budget_period ?? "month";
    const submit = element("button", { type: "submit", className: "button" }, "Save budget");
    const error = element("p", { className: "form-error", role: "alert", hidden: true });
    const form = element(
      "form",
      { className: "filters inline-form", "aria-label": "Team budget" },
      budget.wrap,
      period.wrap,
      submit,
      error,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      try {
        const budgetUsd = numberOrNull(budget.input);
        await whileBusy(submit, "Saving…", () =>
          teams.update(team.name, { budget_usd: budgetUsd, budget_period: period.select.value }),
        );
        await this.load();
      } catch (problem) {
        showError(error, problem);
      }
    });
    return form;
  }

  private members(team: Team): HTMLElement {
    if (team.members.length === 0) return element("p", { className: "hint" }, "No members yet.");
    return element(
      "ul",
      { className: "members", "aria-label": `Members of ${team.name}` },
      ...team.members.map((member) => {
        const remove = element(
          "button",
          { type: "button", className: "button small", "aria-label": `Remove ${member.email}` },
          "Remove",
        );
        remove.addEventListener("click", async () => {
          if (!(await confirmAction(`Remove ${member.email} from ${team.name}?`, "Remove"))) return;
          await withProgress(
            this.root,
            this.status,
            () => teams.removeMember(team.name, member.id),
            "Removing…",
          ).catch(() => null);
          await this.load();
        });
        return element("li", {}, element("span", {}, member.email), remove);
      }),
    );
  }

  private addMemberForm(team: Team): HTMLFormElement {
    const email = field("team-member", "email", "Add a member by email", {
      type: "email",
      required: true,
      autocomplete: "off",
    });
    const submit = element("button", { type: "submit", className: "button" }, "Add member");
    const error = element("p", { className: "form-error", role: "alert", hidden: true });
    const form = element(
      "form",
      { className: "filters inline-form", "aria-label": "Add a member" },
      email.wrap,
      submit,
      error,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      try {
        await whileBusy(submit, "Adding…", () =>
          teams.addMember(team.name, email.input.value.trim()),
        );
        await this.load();
      } catch (problem) {
        showError(error, problem);
      }
    });
    return form;
  }

  private async removeTeam(team: Team): Promise<void> {
    if (!(await confirmAction(`Delete the team “${team.name}”?`))) return;
    await withProgress(this.root, this.status, () => teams.remove(team.name), "Deleting…").catch(
      () => null,
    );
    this.selected = null;
    await this.load();
  }
}
