// The message box: Enter sends, Shift+Enter starts a new line; Stop while a reply streams.
import { required } from "./elements";

export class Composer {
  private readonly form = required<HTMLFormElement>("composer");
  private readonly input = required<HTMLTextAreaElement>("prompt");
  private readonly send = required<HTMLButtonElement>("send");
  private readonly stop = required<HTMLButtonElement>("stop");

  constructor(onSend: (text: string) => void, onStop: () => void) {
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = this.input.value;
      if (!text.trim() || this.busy) return;
      this.input.value = "";
      this.fit();
      onSend(text);
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.form.requestSubmit();
      }
    });
    this.input.addEventListener("input", () => this.fit());
    this.stop.addEventListener("click", onStop);
  }

  get busy(): boolean {
    return !this.stop.hidden;
  }

  setBusy(busy: boolean): void {
    this.stop.hidden = !busy;
    this.send.hidden = busy;
    if (!busy) this.input.focus();
  }

  /** Puts a message that was not kept back in the box, unless something new is there. */
  restore(text: string): void {
    if (this.input.value.trim()) return;
    this.input.value = text;
    this.fit();
  }

  focus(): void {
    this.input.focus();
  }

  /** Grows the box with its text, up to the height the stylesheet allows. */
  private fit(): void {
    this.input.style.height = "auto";
    this.input.style.height = `${this.input.scrollHeight}px`;
  }
}
