// Per-session settings: system prompt, temperature and max tokens.
import { required } from "./elements";
import type { ChatSession, SessionSettings } from "./types";

export class SettingsPanel {
  private readonly form = required<HTMLFormElement>("settings");
  private readonly toggle = required<HTMLButtonElement>("toggle-settings");
  private readonly system = required<HTMLTextAreaElement>("setting-system");
  private readonly temperature = required<HTMLInputElement>("setting-temperature");
  private readonly maxTokens = required<HTMLInputElement>("setting-max-tokens");
  private readonly status = required<HTMLElement>("settings-status");

  constructor(save: (settings: SessionSettings) => Promise<void>) {
    this.toggle.addEventListener("click", () => this.setOpen(this.form.hidden));
    this.form.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      this.setOpen(false);
      this.toggle.focus();
    });
    this.form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!this.form.reportValidity()) {
        this.status.textContent = "Not saved: a value is out of range";
        return;
      }
      this.status.textContent = "Saving…";
      try {
        await save(this.values());
        this.status.textContent = "Saved";
      } catch (error) {
        this.status.textContent = `Not saved: ${(error as Error).message}`;
      }
    });
  }

  /** Shows another chat's settings (or a new chat's, none): what the panel said of the
   * last one's save is no longer news. */
  show(session: ChatSession | null): void {
    this.update(session);
    this.status.textContent = "";
  }

  /** Shows the open chat's settings as the gateway has them now (another tab may have
   * changed them); what the panel says of its own last save ("Saved") stays. */
  update(session: ChatSession | null): void {
    this.system.value = session?.system ?? "";
    this.temperature.value = session?.temperature?.toString() ?? "";
    this.maxTokens.value = session?.max_tokens?.toString() ?? "";
  }

  /** What the panel shows that ``session`` does not have (typed, never saved), or null:
   * a send applies it first, so a reply never uses settings other than those shown. */
  unsavedChanges(session: ChatSession): SessionSettings | null {
    if (!this.form.checkValidity()) throw new Error("A chat setting is out of range");
    const shown = this.values();
    const changes: SessionSettings = {};
    if (shown.system !== session.system) changes.system = shown.system;
    if (shown.temperature !== session.temperature) changes.temperature = shown.temperature;
    if (shown.max_tokens !== session.max_tokens) changes.max_tokens = shown.max_tokens;
    return Object.keys(changes).length > 0 ? changes : null;
  }

  markSaved(): void {
    this.status.textContent = "Saved";
  }

  values(): SessionSettings {
    return {
      system: this.system.value.trim() || null,
      temperature: this.temperature.value === "" ? null : Number(this.temperature.value),
      max_tokens: this.maxTokens.value === "" ? null : Number(this.maxTokens.value),
    };
  }

  private setOpen(open: boolean): void {
    this.form.hidden = !open;
    this.toggle.setAttribute("aria-expanded", String(open));
    if (open) this.system.focus();
  }
}
