// The key dialog: create a key (then show it once, with a copy button) or edit one's
// name, models, limits, budgets, expiry, owners and metadata.
import { copyButton } from "../clipboard";
import { element } from "../elements";
import { keys } from "./api";
import type { CreatedKey, KeySettings, KeyView } from "./types";
import { field, numberOrNull, selectField, showError, whileBusy } from "./ui";

const PERIODS: [string, string][] = [
  ["month", "per month"],
  ["day", "per day"],
  ["total", "in total"],
];

/** ``datetime-local`` text for an epoch, and back. */
function localInput(epoch: number | null): string {
  if (epoch === null) return "";
  const date = new Date(epoch * 1000);
  date.setMinutes(date.getMinutes() - date.getTimezoneOffset());
  return date.toISOString().slice(0, 16);
}

function epochOf(text: string): number | null {
  if (!text) return null;
  const at = new Date(text).getTime();
  if (Number.isNaN(at)) throw new Error("expires: not a date and time");
  return Math.floor(at / 1000);
}

function globs(text: string): string[] {
  return text.split(/[\s,]+/).filter(Boolean);
}

function metadataOf(text: string): Record<string, unknown> {
  if (!text.trim()) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error("metadata: not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Error("metadata: a JSON object is expected");
  }
  return parsed as Record<string, unknown>;
}

function openDialog(dialog: HTMLDialogElement): void {
  document.body.append(dialog);
  dialog.addEventListener("close", () => dialog.remove());
  dialog.showModal();
}

/**
 * Opens the dialog; resolves with the created or updated key, or null if cancelled.
 * ``teamNames`` and ``userEmails`` fill the owner fields' suggestions.
 */
export function editKey(
  existing: KeyView | null,
  teamNames: string[],
  userEmails: string[],
): Promise<KeyView | null> {
  const scope = existing ? "edit-key" : "new-key";
  const name = field(scope, "name", "Name", {
    required: true,
    maxlength: "200",
    autocomplete: "off",
  });
  const models = field(scope, "models", "Models (globs, comma separated; empty: all)", {
    placeholder: "gpt-4o*, claude-*",
    autocomplete: "off",
  });
  // 0 is a limit no call passes (as a budget of 0 is), so the fields take it.
  const rpm = field(scope, "rpm", "Requests per minute", { type: "number", min: "0", step: "1" });
  const tpm = field(scope, "tpm", "Tokens per minute", { type: "number", min: "0", step: "1" });
  const budgetUsd = field(scope, "budget_usd", "Budget (USD)", {
    type: "number",
    min: "0",
    step: "any",
  });
  const budgetTokens = field(scope, "budget_tokens", "Budget (tokens)", {
    type: "number",
    min: "0",
    step: "1",
  });
  const period = selectField(scope, "budget_period", "Budget period", PERIODS);
  const expires = field(scope, "expires_at", "Expires", { type: "datetime-local" });
  const team = field(scope, "owner_team", "Owner team", {
    list: `${scope}-teams`,
    autocomplete: "off",
  });
  const user = field(scope, "owner_user", "Owner user", {
    list: `${scope}-users`,
    autocomplete: "off",
  });
  const metadataId = `${scope}-metadata`;
  const metadata = element("textarea", {
    id: metadataId,
    name: "metadata",
    rows: "2",
    placeholder: '{"project": "…"}',
  });
  const error = element("p", { className: "form-error", role: "alert", hidden: true });
  const submit = element(
    "button",
    { type: "submit", className: "button primary" },
    existing ? "Save" : "Create key",
  );
  const cancel = element("button", { type: "button", className: "button quiet" }, "Cancel");

  if (existing) {
    name.input.value = existing.name;
    models.input.value = existing.models.join(", ");
    rpm.input.value = existing.rpm?.toString() ?? "";
    tpm.input.value = existing.tpm?.toString() ?? "";
    budgetUsd.input.value = existing.budget_usd?.toString() ?? "";
    budgetTokens.input.value = existing.budget_tokens?.toString() ?? "";
    period.select.value = existing.budget_period;
    expires.input.value = localInput(existing.expires_at);
    team.input.value = existing.owner_team ?? "";
    user.input.value = existing.owner_user ?? "";
    metadata.value = Object.keys(existing.metadata).length
      ? JSON.stringify(existing.metadata, null, 1)
      : "";
  }

  const form = element(
    "form",
    { className: "dialog-form key-form" },
    element(
      "h2",
      { id: `${scope}-title` },
      existing ? `Edit key ${existing.name}` : "Create a key",
    ),
    name.wrap,
    models.wrap,
    element("div", { className: "field-row" }, rpm.wrap, tpm.wrap),
    element("div", { className: "field-row" }, budgetUsd.wrap, budgetTokens.wrap, period.wrap),
    element("div", { className: "field-row" }, expires.wrap),
    element("div", { className: "field-row" }, team.wrap, user.wrap),
    element(
      "div",
      { className: "field" },
      element("label", { for: metadataId }, "Metadata (JSON object)"),
      metadata,
    ),
    element(
      "datalist",
      { id: `${scope}-teams` },
      ...teamNames.map((value) => element("option", { value })),
    ),
    element(
      "datalist",
      { id: `${scope}-users` },
      ...userEmails.map((value) => element("option", { value })),
    ),
    error,
    element("div", { className: "dialog-actions" }, cancel, submit),
  );
  const dialog = element(
    "dialog",
    { className: "wide-dialog", "aria-labelledby": `${scope}-title` },
    form,
  );

  return new Promise((resolve) => {
    let result: KeyView | null = null;
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => resolve(result));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      let settings: KeySettings;
      try {
        settings = {
          name: name.input.value.trim(),
          models: globs(models.input.value),
          rpm: numberOrNull(rpm.input),
          tpm: numberOrNull(tpm.input),
          budget_usd: numberOrNull(budgetUsd.input),
          budget_tokens: numberOrNull(budgetTokens.input),
          budget_period: period.select.value as KeySettings["budget_period"],
          expires_at: epochOf(expires.input.value),
          owner_team: team.input.value.trim() || null,
          owner_user: user.input.value.trim() || null,
          metadata: metadataOf(metadata.value),
        };
      } catch (problem) {
        showError(error, problem);
        return;
      }
      try {
        if (existing) {
          // An expiry left as it was is not sent: the field holds whole minutes (sending
          // it back would move the expiry), and an expired key keeps its past expiry
          // while it is renamed or given new limits (a new expiry must be ahead).
          const { expires_at: _expiry, ...others } = settings;
          const changes =
            expires.input.value === localInput(existing.expires_at) ? others : settings;
          result = await whileBusy(submit, "Saving…", () => keys.update(existing.id, changes));
          dialog.close();
        } else {
          const created = await whileBusy(submit, "Creating…", () =>
            keys.create(dropEmpty(settings)),
          );
          result = created;
          showCreated(form, created, () => dialog.close());
        }
      } catch (problem) {
        showError(error, problem);
      }
    });
    openDialog(dialog);
    name.input.focus();
  });
}

/** A new key leaves out what is unset (the API's defaults apply); an edit sends nulls to clear. */
function dropEmpty(settings: KeySettings): KeySettings {
  const kept: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(settings)) {
    if (value !== null && value !== "") kept[name] = value;
  }
  return kept as KeySettings;
}

/** Replaces the form with the new key, shown this once. */
function showCreated(form: HTMLFormElement, created: CreatedKey, done: () => void): void {
  const secret = element("code", { className: "new-key", id: "new-key-value" }, created.key);
  const close = element("button", { type: "button", className: "button primary" }, "Done");
  // Escape does not close it: one stray key press would lose a key never shown again.
  const dialog = form.closest("dialog");
  const stay = (event: Event) => event.preventDefault();
  dialog?.addEventListener("cancel", stay);
  close.addEventListener("click", () => {
    dialog?.removeEventListener("cancel", stay);
    done();
  });
  form.replaceChildren(
    element("h2", {}, "Key created"),
    element("p", {}, "Copy the key now: it is shown this once and cannot be shown again."),
    element(
      "div",
      { className: "new-key-box" },
      secret,
      copyButton(() => created.key, "Copy the new key"),
    ),
    element("div", { className: "dialog-actions" }, close),
  );
  close.focus();
}
