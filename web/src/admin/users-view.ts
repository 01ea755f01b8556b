// Users: the list, create one (optionally an admin), make or unmake admins, set a
// password, delete.
import { confirmAction } from "../dialogs";
import { element } from "../elements";
import { users } from "./api";
import { dateTime } from "./format";
import type { User } from "./types";
import { field, showError, statusLine, table, viewHeader, whileBusy, withProgress } from "./ui";
import type { View } from "./view";

export class UsersView implements View {
  readonly root = element("section", {
    className: "view users-view",
    "aria-labelledby": "users-title",
  });
  private readonly status = statusLine();
  private readonly list = element("div", { className: "results" });

  constructor() {
    const heading = viewHeader("Users");
    heading.querySelector("h1")?.setAttribute("id", "users-title");
    this.root.append(heading, this.createForm(), this.status, this.list);
  }

  async start(): Promise<void> {
    await this.load();
  }

  stop(): void {}

  private createForm(): HTMLFormElement {
    const email = field("new-user", "email", "Email", {
      type: "email",
      required: true,
      autocomplete: "off",
    });
    const password = field("new-user", "password", "Password", {
      type: "password",
      required: true,
      autocomplete: "new-password",
    });
    const admin = element("input", { type: "checkbox", id: "new-user-admin", name: "is_admin" });
    const adminField = element(
      "label",
      { className: "check", for: "new-user-admin" },
      admin,
      " Admin",
    );
    const submit = element(
      "button",
      { type: "submit", className: "button primary" },
      "Create user",
    );
    const error = element("p", { className: "form-error", role: "alert", hidden: true });
    const form = element(
      "form",
      { className: "filters inline-form", "aria-label": "Create a user" },
      email.wrap,
      password.wrap,
      adminField,
      submit,
      error,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      try {
        await whileBusy(submit, "Creating…", () =>
          users.create({
            email: email.input.value.trim(),
            password: password.input.value,
            is_admin: admin.checked,
          }),
        );
        form.reset();
        await this.load();
      } catch (problem) {
        showError(error, problem);
      }
    });
    return form;
  }

  private async load(): Promise<void> {
    const found = await withProgress(this.root, this.status, () => users.list()).catch(() => null);
    if (found === null) return;
    this.list.replaceChildren(
      table<User>(
        "Users",
        [
          { title: "Email", cell: (user) => user.email },
          { title: "Admin", cell: (user) => this.adminToggle(user) },
          { title: "Teams", cell: (user) => user.teams.join(", ") || "—" },
          { title: "Created", cell: (user) => dateTime(user.created_at) },
          { title: "Actions", cell: (user) => this.actions(user) },
        ],
        found,
        { empty: "No users yet." },
      ),
    );
  }

  private adminToggle(user: User): HTMLElement {
    const box = element("input", {
      type: "checkbox",
      "aria-label": `${user.email} is an admin`,
      checked: user.is_admin,
    });
    box.addEventListener("change", async () => {
      box.disabled = true;
      try {
        await users.update(user.id, { is_admin: box.checked });
      } catch (problem) {
        box.checked = !box.checked;
        showError(this.status, problem);
      } finally {
        box.disabled = false;
      }
    });
    return box;
  }

  private actions(user: User): HTMLElement {
    const password = element(
      "button",
      {
        type: "button",
        className: "button small",
        "aria-label": `Set the password of ${user.email}`,
      },
      "Set password",
    );
    password.addEventListener("click", () => void this.setPassword(user, password));
    const remove = element(
      "button",
      {
        type: "button",
        className: "button small danger-quiet",
        "aria-label": `Delete ${user.email}`,
      },
      "Delete",
    );
    remove.addEventListener("click", async () => {
      if (!(await confirmAction(`Delete the user ${user.email} and revoke the keys it owns?`))) return;
      await withProgress(this.root, this.status, () => users.remove(user.id), "Deleting…").catch(
        () => null,
      );
      await this.load();
    });
    return element("div", { className: "row-actions" }, password, remove);
  }

  private async setPassword(user: User, button: HTMLButtonElement): Promise<void> {
    const input = element("input", {
      type: "password",
      "aria-label": `New password for ${user.email}`,
      autocomplete: "new-password",
    });
    const save = element("button", { type: "submit", className: "button small primary" }, "Save");
    const form = element("form", { className: "row-actions" }, input, save);
    button.replaceWith(form);
    input.focus();
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!input.value) return;
      try {
        await whileBusy(save, "Saving…", () => users.update(user.id, { password: input.value }));
        form.replaceWith(button);
      } catch (problem) {
        showError(this.status, problem);
      }
    });
  }
}
