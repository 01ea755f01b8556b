// The connect dialog: add a provider and its key at run time. The key goes to the
// gateway once; the gateway only ever answers whether a provider has one.
import { chatApi } from "./api";
import { element, required } from "./elements";
import type { Connection } from "./types";

export class ConnectDialog {
  private readonly dialog = required<HTMLDialogElement>("connect-dialog");
  private readonly form = required<HTMLFormElement>("connect-form");
  private readonly provider = required<HTMLSelectElement>("connect-provider");
  private readonly key = required<HTMLInputElement>("connect-key");
  private readonly baseUrl = required<HTMLInputElement>("connect-base-url");
  private readonly list = required<HTMLUListElement>("connection-list");
  private readonly error = required<HTMLElement>("connect-error");

  constructor(private readonly onChange: () => Promise<void>) {
    required("open-connect").addEventListener("click", () => void this.open());
    required("connect-cancel").addEventListener("click", () => this.dialog.close());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.connect();
    });
  }

  async open(): Promise<void> {
    this.showError(null);
    this.dialog.showModal();
    await this.refresh();
  }

  private async refresh(): Promise<void> {
    try {
      const { connections, providers } = await chatApi.listConnections();
      if (this.provider.options.length === 0) {
        this.provider.replaceChildren(
          ...providers.map((name) => element("option", { value: name }, name)),
        );
      }
      this.list.replaceChildren(...connections.map((c) => this.item(c)));
    } catch (error) {
      this.showError((error as Error).message);
    }
  }

  private item(connection: Connection): HTMLLIElement {
    const remove = element(
      "button",
      {
        type: "button",
        className: "button quiet small",
        "aria-label": `Disconnect ${connection.provider}`,
      },
      "Disconnect",
    );
    remove.addEventListener("click", async () => {
      this.showError(null);
      try {
        await chatApi.disconnect(connection.provider);
      } catch (error) {
        this.showError(`${connection.provider} is still connected: ${(error as Error).message}`);
        return;
      }
      await this.refresh();
      await this.onChange();
    });
    const detail = [connection.has_key ? "key stored" : "no key", connection.base_url]
      .filter(Boolean)
      .join(" · ");
    // Connected, but no model of it can be picked: say why rather than show nothing.
    const unlisted = connection.models_error
      ? element(
          "span",
          { className: "connection-error", role: "status" },
          `Its models could not be listed: ${connection.models_error}`,
        )
      : null;
    return element(
      "li",
      { className: "connection" },
      element("strong", {}, connection.provider),
      element("span", { className: "hint" }, detail, ...(unlisted ? [unlisted] : [])),
      remove,
    );
  }

  private async connect(): Promise<void> {
    this.showError(null);
    try {
      await chatApi.connect(
        this.provider.value,
        this.key.value.trim() || null,
        this.baseUrl.value.trim() || null,
      );
    } catch (error) {
      this.showError((error as Error).message);
      return;
    }
    // The key leaves the page's memory as soon as the gateway has it.
    this.key.value = "";
    this.baseUrl.value = "";
    await this.onChange(); // lists the models, which says whether it could
    await this.refresh();
  }

  private showError(message: string | null): void {
    this.error.hidden = message === null;
    this.error.textContent = message ?? "";
  }
}
