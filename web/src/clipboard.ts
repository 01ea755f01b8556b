// Copy buttons: the clipboard API where the page is a secure context, else a selection copy.
import { element } from "./elements";

export async function copyText(text: string): Promise<void> {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const scratch = element("textarea", { "aria-hidden": "true", className: "offscreen" });
  scratch.value = text;
  document.body.append(scratch);
  scratch.select();
  document.execCommand("copy");
  scratch.remove();
}

/** A button that copies what ``text`` returns when clicked, and says so for a moment. */
export function copyButton(text: () => string, label: string): HTMLButtonElement {
  const button = element("button", { type: "button", className: "copy", "aria-label": label }, "Copy");
  button.addEventListener("click", async () => {
    try {
      await copyText(text());
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy failed";
    }
    setTimeout(() => (button.textContent = "Copy"), 1500);
  });
  return button;
}
