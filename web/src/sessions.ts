// The sidebar's list of chat sessions: pick, rename in place, delete.
import { element } from "./elements";
import { icon } from "./icons";
import type { ChatSession } from "./types";

export interface SessionActions {
  select(id: string): void;
  rename(id: string, title: string): void;
  remove(session: ChatSession): void;
}

interface FocusedControl {
  id: string;
  control: string;
  index: number;
}

export class SessionList {
  constructor(
    private readonly list: HTMLElement,
    private readonly actions: SessionActions,
  ) {}

  render(sessions: ChatSession[], currentId: string | null): void {
    const focused = this.focusedControl();
    if (sessions.length === 0) {
      this.list.replaceChildren(element("li", { className: "sessions-empty" }, "No chats yet"));
    } else {
      this.list.replaceChildren(...sessions.map((s) => this.item(s, s.id === currentId)));
    }
    if (focused) this.refocus(focused);
  }

  /** Which control of the list has the focus: a redraw gives it back (a keyboard user
   * who opened or renamed a chat would otherwise be left on nothing). */
  private focusedControl(): FocusedControl | null {
    const focused = document.activeElement;
    const item = focused instanceof HTMLElement ? focused.closest<HTMLElement>(".session") : null;
    if (!item || !this.list.contains(item) || !(focused instanceof HTMLElement)) return null;
    const index = [...this.list.children].indexOf(item);
    return { id: item.dataset.sessionId ?? "", control: focused.dataset.control ?? "open", index };
  }

  /** The same control of the same chat, else (it was deleted) the chat now in its place,
   * else New chat. */
  private refocus({ id, control, index }: FocusedControl): void {
    const items = [...this.list.querySelectorAll<HTMLElement>(".session")];
    const same = items.find((item) => item.dataset.sessionId === id);
    const target = same
      ? same.querySelector<HTMLElement>(`[data-control="${control}"]`)
      : (items[Math.min(index, items.length - 1)]?.querySelector<HTMLElement>(".session-open") ??
        document.getElementById("new-chat"));
    target?.focus();
  }

  private item(session: ChatSession, current: boolean): HTMLLIElement {
    const open = element(
      "button",
      {
        type: "button",
        className: "session-open",
        "aria-current": current ? "page" : undefined,
        "data-control": "open",
      },
      session.title || "Untitled",
    );
    open.addEventListener("click", () => this.actions.select(session.id));
    const rename = element(
      "button",
      {
        type: "button",
        className: "button icon small",
        "aria-label": `Rename ${session.title}`,
        "data-control": "rename",
      },
      icon("edit"),
    );
    const remove = element(
      "button",
      {
        type: "button",
        className: "button icon small",
        "aria-label": `Delete ${session.title}`,
        "data-control": "delete",
      },
      icon("trash"),
    );
    const item = element(
      "li",
      { className: current ? "session current" : "session", "data-session-id": session.id },
      open,
      rename,
      remove,
    );
    rename.addEventListener("click", () => this.editTitle(item, session));
    remove.addEventListener("click", () => this.actions.remove(session));
    return item;
  }

  private editTitle(item: HTMLLIElement, session: ChatSession): void {
    const input = element("input", {
      type: "text",
      className: "session-title-input",
      "aria-label": "Chat title",
      maxlength: "200",
    });
    input.value = session.title;
    const form = element("form", { className: "session-rename" }, input);
    let settled = false;
    const settle = (save: boolean) => {
      if (settled) return;
      settled = true;
      const title = input.value.trim();
      // A new item, not the old one's buttons: their listeners belong to their own item.
      // A rename that succeeds redraws the list with the new title; one that fails leaves
      // the old title, and the pencil works again either way.
      const fresh = this.item(session, item.classList.contains("current"));
      const hadFocus = item.contains(document.activeElement);
      item.replaceWith(fresh);
      // The focus goes back to the pencil, whether the new title was kept or not.
      if (hadFocus) fresh.querySelector<HTMLButtonElement>("[data-control='rename']")?.focus();
      if (save && title && title !== session.title) this.actions.rename(session.id, title);
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      settle(true);
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") settle(false);
    });
    input.addEventListener("blur", () => settle(true));
    item.replaceChildren(form);
    input.focus();
    input.select();
  }
}
