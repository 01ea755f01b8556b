// The page's controller: sessions, the current conversation, and one reply stream at a time.
import { chatApi, errorMessage, failureReason } from "./api";
import { Composer } from "./composer";
import { ConnectDialog } from "./connect";
import { Conversation, type Reply } from "./conversation";
import { confirmAction } from "./dialogs";
import { required } from "./elements";
import { readEvents } from "./events";
import { ModelPicker } from "./models";
import { SessionList } from "./sessions";
import { SettingsPanel } from "./settings";
import type { ChatEvent, ChatSession, SessionSettings } from "./types";

/** Where the sessions become a drawer (the stylesheet's breakpoint). */
const PHONE_WIDTH = window.matchMedia("(max-width: 720px)");

export class ChatApp {
  private sessions: ChatSession[] = [];
  private current: ChatSession | null = null;
  private streaming: AbortController | null = null;

  private readonly title = required<HTMLElement>("chat-title");
  private readonly notice = required<HTMLElement>("notice");
  private readonly layout = required<HTMLElement>("app");
  private readonly sidebar = required<HTMLElement>("sidebar");
  private readonly main = required<HTMLElement>("main");
  private readonly sidebarToggle = required<HTMLButtonElement>("toggle-sidebar");
  private readonly conversation = new Conversation(required("messages"), () => void this.regenerate());
  private readonly composer = new Composer((text) => void this.send(text), () => this.stop());
  private readonly models = new ModelPicker(required("model-picker"), (m) => void this.pickModel(m));
  private readonly settings = new SettingsPanel((values) => this.saveSettings(values));
  private readonly sessionList = new SessionList(required("session-list"), {
    select: (id) => void this.open(id),
    rename: (id, title) => void this.update(id, { title }),
    remove: (session) => void this.remove(session),
  });

  constructor() {
    new ConnectDialog(() => this.models.load());
    required("new-chat").addEventListener("click", () => void this.newChat());
    this.sidebarToggle.addEventListener("click", () => this.showSidebar(!this.sidebarShown()));
    required("backdrop").addEventListener("click", () => this.showSidebar(false));
    // The drawer is a phone's: a window grown past phone width has no drawer to close.
    PHONE_WIDTH.addEventListener("change", () => this.showSidebar(false));
    this.sidebar.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.sidebarShown()) this.showSidebar(false);
    });
    // The skip link's own jump would put "#prompt" where the open chat's id belongs.
    required("skip-link").addEventListener("click", (event) => {
      event.preventDefault();
      this.composer.focus();
    });
  }

  async start(): Promise<void> {
    await this.guard(async () => {
      await Promise.all([this.models.load(), this.loadSessions()]);
      const wanted = decodeURIComponent(location.hash.slice(1));
      const first = this.sessions.find((s) => s.id === wanted) ?? this.sessions[0];
      if (first) await this.open(first.id);
      else this.showSession(null);
    });
    this.composer.focus();
    // Tests (and impatient people) wait for this before acting on the page.
    document.body.dataset.ready = "true";
  }

  private async loadSessions(): Promise<void> {
    this.sessions = await chatApi.listSessions();
    this.sessionList.render(this.sessions, this.current?.id ?? null);
  }

  private async open(id: string): Promise<void> {
    if (this.composer.busy) this.stop();
    const fromDrawer = this.sidebarShown();
    await this.guard(async () => {
      const { session, messages } = await chatApi.getSession(id);
      this.showSession(session);
      this.conversation.show(messages);
    });
    this.showSidebar(false);
    if (fromDrawer) this.composer.focus();
  }

  private showSession(session: ChatSession | null): void {
    this.current = session;
    this.title.textContent = session?.title ?? "New chat";
    history.replaceState(null, "", session ? `#${encodeURIComponent(session.id)}` : location.pathname);
    this.settings.show(session);
    this.models.choose(session?.model ?? null);
    this.sessionList.render(this.sessions, session?.id ?? null);
    if (!session) this.conversation.clear();
  }

  private async newChat(): Promise<void> {
    if (this.composer.busy) this.stop();
    if (this.current && this.conversation.isEmpty()) {
      // An untouched chat is already a new one: no second empty session.
      this.showSidebar(false);
      this.composer.focus();
      return;
    }
    await this.guard(async () => {
      const session = await chatApi.createSession({ model: this.models.value || null });
      this.sessions.unshift(session);
      this.showSession(session);
      this.conversation.clear();
    });
    this.showSidebar(false);
    this.composer.focus();
  }

  /** The current session, created (with the picked model and settings) on first use. */
  private async ensureSession(): Promise<ChatSession> {
    if (this.current) return this.current;
    const session = await chatApi.createSession({
      model: this.models.value || null,
      ...this.settings.values(),
    });
    this.sessions.unshift(session);
    this.showSession(session);
    return session;
  }

  /** Changes a session, its failure in the notice bar. */
  private async update(id: string, changes: SessionSettings): Promise<void> {
    await this.guard(() => this.apply(id, changes));
  }

  /** Changes a session; a refusal is thrown to the caller. */
  private async apply(id: string, changes: SessionSettings): Promise<void> {
    const updated = await chatApi.updateSession(id, changes);
    this.sessions = this.sessions.map((s) => (s.id === id ? updated : s));
    if (this.current?.id === id) {
      this.current = updated;
      this.title.textContent = updated.title;
    }
    this.sessionList.render(this.sessions, this.current?.id ?? null);
  }

  private async remove(session: ChatSession): Promise<void> {
    if (!(await confirmAction(`Delete “${session.title}” and its messages?`))) return;
    // A reply streams only into the open chat: deleting it stops the reply (and its
    // upstream call) as leaving it for another chat does.
    if (this.composer.busy && this.current?.id === session.id) this.stop();
    await this.guard(async () => {
      await chatApi.deleteSession(session.id);
      this.sessions = this.sessions.filter((s) => s.id !== session.id);
      if (this.current?.id === session.id) this.showSession(null);
      else this.sessionList.render(this.sessions, this.current?.id ?? null);
    });
  }

  private async pickModel(model: string): Promise<void> {
    if (this.current) await this.update(this.current.id, { model });
  }

  private async saveSettings(values: SessionSettings): Promise<void> {
    if (!this.current) {
      await this.ensureSession();
      return;
    }
    // The settings panel says whether they were saved, and why not.
    await this.apply(this.current.id, values);
  }

  private async send(text: string): Promise<void> {
    if (this.composer.busy) return;
    this.composer.setBusy(true);
    let session: ChatSession;
    const made = this.current === null;
    try {
      // No models yet: the page started without a key (its prompt cancelled). Asking for
      // them now prompts again, and a key given then fills the picker before the send.
      if (!this.models.value) await this.models.load();
      session = await this.ensureSession();
      session = await this.saveShownSettings(session);
    } catch (error) {
      // Nothing was sent (no key given, the gateway down): the text goes back in the box.
      this.composer.setBusy(false);
      this.composer.restore(text);
      this.showNotice(`Not sent. ${sentence(failureReason(error))} Your message is back in the box.`);
      return;
    }
    this.conversation.addUser(text);
    const outcome = await this.streamReply(session, { content: text, model: this.models.value });
    if (outcome === "refused" && made) await this.discard(session);
  }

  /** Settings typed in the panel but not saved (a chat made with "New chat", say) are
   * saved before the message goes: the reply uses what the panel shows. */
  private async saveShownSettings(session: ChatSession): Promise<ChatSession> {
    const changes = this.settings.unsavedChanges(session);
    if (!changes) return session;
    await this.apply(session.id, changes);
    this.settings.markSaved();
    return this.current ?? session;
  }

  /** A chat made for a message the gateway then refused holds nothing: it goes, rather
   * than stay in the list as an empty "New chat". The refusal stays on the page. */
  private async discard(session: ChatSession): Promise<void> {
    await this.guard(async () => {
      await chatApi.deleteSession(session.id);
      this.sessions = this.sessions.filter((s) => s.id !== session.id);
      if (this.current?.id === session.id) {
        this.current = null;
        this.title.textContent = "New chat";
        history.replaceState(null, "", location.pathname);
      }
      this.sessionList.render(this.sessions, this.current?.id ?? null);
    });
  }

  private async regenerate(): Promise<void> {
    if (this.composer.busy || !this.current) return;
    this.composer.setBusy(true);
    // The gateway replaces the old reply only with one that ended well; until then it is
    // hidden here, and it comes back if the new one fails, is stopped or is refused.
    const held = this.conversation.holdLastReplies();
    const outcome = await this.streamReply(this.current, {
      content: "",
      regenerate: true,
      model: this.models.value,
    });
    this.conversation.releaseReplies(held, outcome === "answered");
  }

  private stop(): void {
    this.streaming?.abort();
  }

  /** Streams the reply to a message (or a regenerate): "refused" when the gateway kept
   * nothing, "answered" when it kept a reply that ended well, else "kept". */
  private async streamReply(
    session: ChatSession,
    body: { content: string; model: string; regenerate?: boolean },
  ): Promise<"refused" | "kept" | "answered"> {
    const controller = new AbortController();
    this.streaming = controller;
    this.composer.setBusy(true);
    this.hideNotice();
    const reply = this.conversation.startReply(body.model);
    let messageId: string | null = null;
    // Refused before anything was kept: an error answer, a stream whose end says so, or
    // no answer at all (the gateway unreachable, a key prompt given up).
    let refused = false;
    let answered = false;
    try {
      const response = await chatApi.sendMessage(session.id, body, controller.signal);
      answered = true;
      if (!response.ok) {
        reply.showError(await errorMessage(response), response.status);
        refused = true;
      } else {
        for await (const event of readEvents(response)) {
          if (event.type === "done" && event.message_id === null) refused = true;
          messageId = applyEvent(reply, event) ?? messageId;
        }
      }
    } catch (error) {
      if (controller.signal.aborted) reply.markStopped();
      else {
        reply.showError((error as Error).message);
        refused = !answered;
      }
    } finally {
      reply.finish(messageId);
      if (refused && body.regenerate) {
        reply.markUnsaved("Not saved: the reply before it is kept");
      } else if (refused) {
        // A key's limits, a full chat...: the gateway kept nothing, so nothing is lost.
        reply.markUnsaved("Not saved: your message is back in the box");
        this.composer.restore(body.content);
      }
      this.streaming = null;
      this.composer.setBusy(false);
      this.conversation.refreshRegenerate();
    }
    // The first message names the session and every message moves it to the top.
    await this.guard(() => this.loadSessions());
    const fresh = this.sessions.find((s) => s.id === session.id);
    if (fresh && this.current?.id === fresh.id) {
      this.current = fresh;
      this.title.textContent = fresh.title;
    }
    if (refused) return "refused";
    return messageId !== null && reply.endedWell ? "answered" : "kept";
  }

  private sidebarShown(): boolean {
    return this.layout.classList.contains("sidebar-open");
  }

  /** Opens or closes the sessions drawer (phones). Open, it has the focus and the chat
   * behind it takes none; closed, the focus it had goes back to the menu button. */
  private showSidebar(shown: boolean): void {
    const wasShown = this.sidebarShown();
    this.layout.classList.toggle("sidebar-open", shown);
    this.sidebarToggle.setAttribute("aria-expanded", String(shown));
    required("backdrop").hidden = !shown;
    this.main.inert = shown;
    if (shown && !wasShown) required("new-chat").focus();
    if (!shown && wasShown && this.sidebar.contains(document.activeElement)) {
      this.sidebarToggle.focus();
    }
  }

  /** Runs an action, showing its failure in the notice bar rather than losing it. */
  private async guard(action: () => Promise<void>): Promise<void> {
    try {
      await action();
    } catch (error) {
      this.showNotice(sentence(failureReason(error)));
    }
  }

  private showNotice(message: string): void {
    this.notice.textContent = message;
    this.notice.hidden = false;
  }

  private hideNotice(): void {
    this.notice.hidden = true;
  }
}

/** ``text`` ending as a sentence does. */
function sentence(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/** Applies one stream event to the reply; returns the saved message's id when done. */
function applyEvent(reply: Reply, event: ChatEvent): string | null {
  switch (event.type) {
    case "provider":
      reply.setProvider(event.provider, event.model);
      break;
    case "delta":
      reply.appendText(event.text);
      break;
    case "usage":
      reply.setUsage(event.tokens, event.accurate);
      break;
    case "error":
      reply.showError(event.message, event.status);
      break;
    case "rate_limited":
      reply.showRateLimit(event.message, event.retry_after);
      break;
    case "done":
      return event.message_id;
  }
  return null;
}
