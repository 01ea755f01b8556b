// The model picker, fed by the gateway's own /v1/models.
import { chatApi } from "./api";
import { element, required } from "./elements";

const LAST_MODEL = "modelway.model";

export class ModelPicker {
  private models: string[] = [];
  private readonly note = required<HTMLElement>("model-note");

  constructor(
    private readonly select: HTMLSelectElement,
    onChange: (model: string) => void,
  ) {
    select.addEventListener("change", () => {
      localStorage.setItem(LAST_MODEL, select.value);
      this.explain();
      onChange(select.value);
    });
  }

  get value(): string {
    return this.select.value;
  }

  async load(): Promise<void> {
    const entries = await chatApi.listModels();
    this.models = entries.map((entry) => entry.id);
    const current = this.select.value;
    this.select.replaceChildren(...this.models.map((id) => element("option", { value: id }, id)));
    this.choose(current || null);
  }

  /** Shows ``model`` (a session's), else the last one picked, else a real provider's. */
  choose(model: string | null): void {
    const candidates = [model, localStorage.getItem(LAST_MODEL)];
    let pick = candidates.find((id) => id && this.models.includes(id));
    pick ??= this.models.find((id) => !id.startsWith("mock/")) ?? this.models[0];
    for (const option of [...this.select.options]) {
      if (!this.models.includes(option.value)) option.remove();
    }
    if (model && !this.models.includes(model)) {
      // A session's model the gateway does not list now stays visible, so it is not lost,
      // and the note under the header says what that means and what to do.
      this.select.append(element("option", { value: model }, `${model} (not offered now)`));
      pick = model;
    }
    if (pick) this.select.value = pick;
    this.explain();
  }

  /** Says, under the header, why the model picked is not among the gateway's models. */
  private explain(): void {
    const model = this.select.value;
    const unlisted = model !== "" && !this.models.includes(model);
    this.note.hidden = !unlisted;
    this.note.textContent = unlisted
      ? `This chat's model, ${model}, is not offered by the gateway now: its provider ` +
        "is not connected, or did not list its models. Pick another model, or connect " +
        "its provider with “Connect a provider”."
      : "";
    if (unlisted) this.select.setAttribute("aria-describedby", "model-note");
    else this.select.removeAttribute("aria-describedby");
  }
}
