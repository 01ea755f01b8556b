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
    // A keyboard user who pressed Send (or Regenerate, whose reply is then hidden) would
    // be left with the focus nowhere: it goes to Stop, the one thing to press meanwhile.
    const stranded = busy && (document.activeElement === this.send || focusLost());
    this.stop.hidden = !busy;
    this.send.hidden = busy;
    if (stranded) this.stop.focus();
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

/** Whether the focus is on nothing, or on a control no longer shown. */
export function focusLost(): boolean {
  const focused = document.activeElement;
  return !(focused instanceof HTMLElement) || focused === document.body || !focused.checkVisibility();
}
