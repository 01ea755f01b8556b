// Small modal dialogs: a yes/no confirmation and the gateway key prompt.
import { gatewayKey, keyReason, setGatewayKey } from "./api";
import { required } from "./elements";

/** Resolves true when the user confirms. Native dialogs (confirm()) are never used. */
export function confirmAction(text: string, action = "Delete"): Promise<boolean> {
  const dialog = required<HTMLDialogElement>("confirm-dialog");
  required("confirm-text").textContent = text;
  required("confirm-ok").textContent = action;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), {
      once: true,
    });
  });
}

/** Asks for the gateway key; resolves true if one was entered (it is then stored). */
export function askForGatewayKey(reason: string): Promise<boolean> {
  const dialog = required<HTMLDialogElement>("key-dialog");
  const form = required<HTMLFormElement>("key-form");
  const input = required<HTMLInputElement>("key-input");
  const said = keyReason(reason);
  const sentence = /[.!?]$/.test(said) ? said : `${said}.`;
  required("key-reason").textContent =
    `${sentence} The key is kept in this browser only and sent to this gateway as a Bearer token.`;
  input.value = "";
  dialog.returnValue = "";
  if (!dialog.open) dialog.showModal();
  input.focus();
  return new Promise((resolve) => {
    const submit = (event: SubmitEvent) => {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      setGatewayKey(key);
      dialog.returnValue = "key";
      dialog.close();
    };
    form.addEventListener("submit", submit);
    dialog.addEventListener(
      "close",
      () => {
        form.removeEventListener("submit", submit);
        resolve(dialog.returnValue === "key");
      },
      { once: true },
    );
  });
}

export function setUpKeyDialog(): void {
  const dialog = required<HTMLDialogElement>("key-dialog");
  required("key-cancel").addEventListener("click", () => dialog.close());
  required("key-forget").addEventListener("click", () => {
    setGatewayKey(null);
    dialog.close();
  });
  required("open-key").addEventListener("click", () => {
    const reason = gatewayKey() ? "A key is set; enter another to replace it." : "No key is set.";
    void askForGatewayKey(reason).then((given) => given && location.reload());
  });
}
