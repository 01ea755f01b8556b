// The page's controller: sessions, the current conversation, and one reply stream at a time.
import { ApiError, chatApi, errorMessage, failureReason } from "./api";
import { Composer } from "./composer";
import { ConnectDialog } from "./connect";
import { Conversation, type Reply } from "./conversation";
import { confirmAction } from "./dialogs";
import { required } from "./elements";
import { readEvents } from "./events";
import { ModelPicker } from "./models";
import { SessionList } from "./sessions";
import { SettingsPanel } from "./settings";
import type { ChatEvent, ChatMessage, ChatSession, SessionSettings } from "./types";

/** How a message (or a regenerate) went: "refused" when the gateway kept nothing,
 * "conflict" when it refused it because the chat changed in another tab or window,
 * "answered" when it kept a reply that ended well, else "kept". */
type Outcome = "refused" | "conflict" | "kept" | "answered";

/** What a message sends: ``after`` names the last message this page shows. */
interface MessageBody {
  content: string;
  model: string;
  regenerate?: boolean;
  after: string | null;
}

/** What a notice above the message box tells: "info", what happened that the person
 * should know (another tab changed the chat); "error", that something they did failed. */
type NoticeKind = "info" | "error";

/** The title of a chat not named yet (the gateway's default). */
const NEW_CHAT = "New chat";

/** Where the sessions become a drawer (the stylesheet's breakpoint). */
const PHONE_WIDTH = window.matchMedia("(max-width: 720px)");

export class ChatApp {
  private sessions: ChatSession[] = [];
  private current: ChatSession | null = null;
  private streaming: AbortController | null = null;
  /** Counts what this page changed (a chat opened, made, renamed or deleted, a message
   * sent): a refresh begun before a change is not applied after it. */
  private version = 0;
  private refreshing = false;

  private readonly title = required<HTMLElement>("chat-title");
  /** One live region per kind, always in the page (a region added or shown together
   * with its text is not reliably read): a status is read once the screen reader is
   * idle, an alert at once. */
  private readonly notices: Record<NoticeKind, HTMLElement> = {
    info: required("notice-info"),
    error: required("notice-error"),
  };
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
    // A chat's address typed or pasted into this tab's address bar opens it.
    window.addEventListener("hashchange", () => {
      const wanted = decodeURIComponent(location.hash.slice(1));
      if (wanted && wanted !== this.current?.id) void this.open(wanted);
    });
    // Back from another tab or window: the chat may have changed there.
    window.addEventListener("focus", () => void this.refresh());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") void this.refresh();
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
    this.version += 1;
    // A notice is about the chat shown (or what was done there): not the next one's.
    if (session?.id !== this.current?.id) this.hideNotice();
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
    if (this.current && this.conversation.isEmpty() && this.current.title === NEW_CHAT) {
      // An untouched chat is already a new one: no second empty session. (One renamed,
      // say "Old chat", is not: a new conversation would land under that name.)
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
    this.version += 1;
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
      this.version += 1;
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
    this.version += 1;
    let session: ChatSession;
    let after: string | null;
    const made = this.current === null;
    try {
      // No models yet: the page started without a key (its prompt cancelled). Asking for
      // them now prompts again, and a key given then fills the picker before the send.
      if (!this.models.value) await this.models.load();
      session = await this.ensureSession();
      session = await this.saveShownSettings(session);
      after = await this.lastMessageId(session);
    } catch (error) {
      // Nothing was sent (no key given, the gateway down): the text goes back in the box.
      this.composer.setBusy(false);
      this.composer.restore(text);
      this.showNotice(
        `Not sent. ${sentence(failureReason(error))} Your message is back in the box.`,
        "error",
      );
      return;
    }
    const question = this.conversation.addUser(text);
    const body = { content: text, model: this.models.value, after };
    const outcome = await this.streamReply(session, body, question);
    if (outcome === "refused" && made) await this.discard(session);
  }

  /** The id of the last message shown; when a reply was stopped before the gateway said
   * its id, the chat is read again first. */
  private async lastMessageId(session: ChatSession): Promise<string | null> {
    const known = this.conversation.lastSavedId();
    if (known !== undefined) return known;
    const { messages } = await chatApi.getSession(session.id);
    if (this.current?.id === session.id) this.conversation.show(messages);
    return messages.length > 0 ? messages[messages.length - 1].id : null;
  }

  /** Shows what the gateway has of the open chat now, if it changed (another tab or
   * window sent, regenerated or deleted meanwhile). Never while a reply streams. */
  private async refresh(): Promise<void> {
    if (this.composer.busy || this.refreshing || document.visibilityState !== "visible") return;
    this.refreshing = true;
    const shown = this.current;
    const version = this.version;
    try {
      // The list too: titles, and chats made or deleted elsewhere.
      const [sessions, fresh] = await Promise.all([
        chatApi.listSessions(),
        shown
          ? chatApi.getSession(shown.id).catch((error: unknown) => {
              if (error instanceof ApiError && error.status === 404) return null;
              throw error;
            })
          : null,
      ]);
      if (this.version !== version || this.composer.busy) return;
      this.sessions = sessions;
      if (shown && fresh === null) {
        this.showSession(null);
        this.showNotice("This chat was deleted in another tab or window.", "info");
      } else if (fresh) {
        this.showChanges(fresh.session, fresh.messages);
      }
      this.sessionList.render(this.sessions, this.current?.id ?? null);
    } catch {
      // Unreachable now: nothing changes here, and the next send says why.
    } finally {
      this.refreshing = false;
    }
  }

  /** The open chat as the gateway has it: its messages, and its settings, title and
   * model where this page holds no edit of its own. */
  private showChanges(session: ChatSession, messages: ChatMessage[]): void {
    const ids = messages.map((message) => message.id);
    const shownIds = this.conversation.savedIds();
    if (ids.length !== shownIds.length || ids.some((id, index) => id !== shownIds[index])) {
      this.conversation.show(messages);
    }
    let edited: boolean;
    try {
      edited = this.current !== null && this.settings.unsavedChanges(this.current) !== null;
    } catch {
      edited = true; // a value out of range: being typed
    }
    if (!edited) this.settings.update(session);
    this.current = session;
    this.title.textContent = session.title;
    this.models.choose(session.model);
  }

  /** A message the gateway refused as sent from a stale view of the chat: the page shows
   * the chat as it is now, and says why nothing was sent. */
  private async showConflict(session: ChatSession, code: string, regenerate: boolean): Promise<void> {
    const what = regenerate ? "Not regenerated" : "Not sent";
    const back = regenerate ? "" : " Your message is back in the box.";
    const why =
      code === "chat_answering"
        ? "this chat is still answering a message sent from another tab or window. Wait for that reply, then try again."
        : "this chat changed in another tab or window. It now shows the latest messages.";
    await this.guard(async () => {
      const fresh = await chatApi.getSession(session.id);
      if (this.current?.id === session.id) this.showChanges(fresh.session, fresh.messages);
    });
    // Nothing failed: the chat is shown as it is now, and nothing typed is lost.
    this.showNotice(`${what}: ${why}${back}`, "info");
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
      this.version += 1;
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
    const session = this.current;
    this.composer.setBusy(true);
    this.version += 1;
    let after: string | null;
    try {
      after = await this.lastMessageId(session);
    } catch (error) {
      this.composer.setBusy(false);
      this.showNotice(`Not regenerated. ${sentence(failureReason(error))}`, "error");
      return;
    }
    // The gateway replaces the old reply only with one that ended well; until then it is
    // hidden here, and it comes back if the new one fails, is stopped or is refused.
    const held = this.conversation.holdLastReplies();
    const body = { content: "", regenerate: true, model: this.models.value, after };
    const outcome = await this.streamReply(session, body);
    if (outcome !== "conflict") this.conversation.releaseReplies(held, outcome === "answered");
  }

  private stop(): void {
    this.streaming?.abort();
  }

  /** Streams the reply to a message (shown as ``question``) or a regenerate. */
  private async streamReply(
    session: ChatSession,
    body: MessageBody,
    question?: HTMLElement,
  ): Promise<Outcome> {
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
    // The code of a 409: the chat changed in another tab or window.
    let conflict: string | null = null;
    try {
      const response = await chatApi.sendMessage(session.id, body, controller.signal);
      answered = true;
      if (response.status === 409) {
        conflict = await errorCode(response);
      } else if (!response.ok) {
        reply.showError(await errorMessage(response), response.status);
        refused = true;
      } else {
        for await (const event of readEvents(response)) {
          if (event.type === "done" && event.message_id === null) refused = true;
          if (event.type === "accepted" && event.question_id !== null) {
            question?.setAttribute("data-message-id", event.question_id);
          }
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
      if (conflict !== null) {
        reply.node.remove(); // the chat is shown as the gateway has it, below
        question?.remove();
        if (!body.regenerate) this.composer.restore(body.content);
      } else if (refused && body.regenerate) {
        reply.markUnsaved("Not saved: the reply before it is kept");
      } else if (refused) {
        // A key's limits, a full chat...: the gateway kept nothing, so nothing is lost.
        reply.markUnsaved("Not saved: your message is back in the box");
        question?.classList.add("unsaved");
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
    if (conflict !== null) {
      await this.showConflict(session, conflict, body.regenerate === true);
      return "conflict";
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
      this.showNotice(sentence(failureReason(error)), "error");
    }
  }

  private showNotice(message: string, kind: NoticeKind): void {
    this.hideNotice();
    this.notices[kind].textContent = message;
  }

  /** Empty, a notice's region takes no room (the stylesheet's ``.notice:empty``). */
  private hideNotice(): void {
    for (const region of Object.values(this.notices)) region.textContent = "";
  }
}

/** ``text`` ending as a sentence does. */
function sentence(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/** The ``code`` of an error answer, or "" when it has none. */
async function errorCode(response: Response): Promise<string> {
  try {
    const body = await response.json();
    return String(body?.error?.code ?? "");
  } catch {
    return "";
  }
}

/** Applies one stream event to the reply; returns the saved message's id when done. */
function applyEvent(reply: Reply, event: ChatEvent): string | null {
  switch (event.type) {
    case "accepted":
      reply.accept(event.reply_id);
      break;
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
