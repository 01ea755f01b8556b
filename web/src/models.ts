// The model picker, fed by the gateway's own /v1/models.
import { chatApi } from "./api";
import { element } from "./elements";

const LAST_MODEL = "modelway.model";

export class ModelPicker {
  private models: string[] = [];

  constructor(
    private readonly select: HTMLSelectElement,
    onChange: (model: string) => void,
  ) {
    select.addEventListener("change", () => {
      localStorage.setItem(LAST_MODEL, select.value);
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
      // A session's model that no provider serves now stays visible, so it is not lost.
      this.select.append(element("option", { value: model }, `${model} (unavailable)`));
      pick = model;
    }
    if (pick) this.select.value = pick;
  }
}
