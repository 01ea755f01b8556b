// Entry point of the admin dashboard at /admin: sign in (or resume the cookie's
// session), then one view at a time chosen by the address's #fragment.
import { required } from "../elements";
import { setUpTheme } from "../theme";
import { ApiError, session, whenSignedOut } from "./api";
import { redrawCharts } from "./charts";
import { HealthView } from "./health-view";
import { KeysView } from "./keys-view";
import { RequestsView } from "./requests-view";
import { askToSignIn } from "./sign-in";
import { TeamsView } from "./teams-view";
import type { Session } from "./types";
import { UsageView } from "./usage-view";
import { UsersView } from "./users-view";
import type { View } from "./view";

const VIEWS: Record<string, () => View> = {
  usage: () => new UsageView(),
  keys: () => new KeysView(),
  teams: () => new TeamsView(),
  users: () => new UsersView(),
  requests: () => new RequestsView(),
  health: () => new HealthView(),
};
const FIRST = "usage";

class AdminApp {
  private current: View | null = null;
  private readonly shell = required("admin-app");
  private readonly main = required("view");

  async start(): Promise<void> {
    whenSignedOut(() => void this.signedOut());
    required("sign-out").addEventListener("click", () => void this.signOut());
    window.addEventListener("hashchange", () => this.route());
    let resumed: Session | null = null;
    try {
      resumed = await session.current();
    } catch (error) {
      if (error instanceof ApiError && error.status === 403) {
        // No master key: nobody can sign in, so no sign-in form — the gateway's reason.
        required("boot").textContent = error.message;
        document.body.dataset.adminOff = "true";
        return;
      }
    }
    required("boot").hidden = true;
    this.enter(resumed ?? (await askToSignIn()));
  }

  private enter(signedIn: Session): void {
    required("who").textContent =
      signedIn.who.kind === "master" ? "Master key" : (signedIn.who.email ?? "admin user");
    this.shell.hidden = false;
    document.body.dataset.signedIn = "true";
    this.route();
  }

  private route(): void {
    if (this.shell.hidden) return;
    const name = location.hash.replace(/^#\/?/, "");
    if (!(name in VIEWS)) {
      history.replaceState(null, "", `#/${FIRST}`);
      this.route();
      return;
    }
    this.current?.stop();
    const view = VIEWS[name]();
    this.current = view;
    for (const link of document.querySelectorAll<HTMLAnchorElement>(".admin-nav a")) {
      if (link.dataset.view === name) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    this.main.replaceChildren(view.root);
    document.body.dataset.view = name;
    void view.start().catch(() => undefined); // a view shows its own errors
  }

  private leave(): void {
    this.current?.stop();
    this.current = null;
    this.main.replaceChildren();
    this.shell.hidden = true;
    delete document.body.dataset.signedIn;
    for (const dialog of document.querySelectorAll("dialog")) if (dialog.open) dialog.close();
  }

  private async signOut(): Promise<void> {
    await session.signOut().catch(() => undefined);
    await this.signedOut();
  }

  private async signedOut(): Promise<void> {
    if (this.shell.hidden) return;
    this.leave();
    this.enter(await askToSignIn());
  }
}

setUpTheme();
new MutationObserver(redrawCharts).observe(document.documentElement, {
  attributes: true,
  attributeFilter: ["data-theme"],
});
void new AdminApp().start();
