// The message list: past turns from the store, and the reply being streamed.
import { copyButton } from "./clipboard";
import { element } from "./elements";
import { RENDER_MARK, renderMarkdown, StreamingMarkdown } from "./markdown";
import type { ChatMessage, TokenCounts } from "./types";

/** The error a reply the user stopped is saved with (the terminal chat uses it too). */
const STOPPED = "stopped";

/** A wait stated in a rate limit's message: the gateway's own ("250ms", "59.5s",
 * "1m0.244s", "6m0s", "1h2m3s": limits.format_reset) or a provider's ("20 seconds"). */
const STATED_WAIT =
  /\s*(please )?try again in (?:[\d.]+ ?(?:h|m(?!s))\s*)*[\d.]+ ?(?:ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hours?)\b\.?/i;

/** The least time (ms) between two renders of a reply as it streams. */
const MIN_RENDER_INTERVAL = 50;

/** How close to the bottom (px) still counts as following the conversation. */
const FOLLOW_DISTANCE = 80;

export class Conversation {
  private following = true;

  constructor(
    private readonly container: HTMLElement,
    private readonly onRegenerate: () => void,
  ) {
    // Reading back up stops the view from jumping to each new line; scrolling down resumes.
    container.addEventListener("scroll", () => {
      const distance = container.scrollHeight - container.scrollTop - container.clientHeight;
      this.following = distance < FOLLOW_DISTANCE;
    });
  }

  clear(): void {
    this.container.replaceChildren(
      element(
        "div",
        { className: "empty" },
        element("p", {}, "Ask anything. Replies stream in as Markdown."),
      ),
    );
  }

  show(messages: ChatMessage[]): void {
    if (messages.length === 0) return this.clear();
    this.container.replaceChildren();
    for (const message of messages) {
      if (message.role === "user") this.addUser(message.content, message.id);
      else this.addStoredReply(message);
    }
    this.refreshRegenerate();
    this.jumpToEnd();
  }

  isEmpty(): boolean {
    return this.container.querySelector(".message") === null;
  }

  /** Shows a message the user sent; its id once the gateway has saved it. */
  addUser(text: string, id?: string): HTMLElement {
    this.container.querySelector(".empty")?.remove();
    const body = element("div", { className: "message-body plain" }, text);
    const node = element(
      "article",
      { className: "message user", "aria-label": "You", "data-message-id": id },
      body,
    );
    this.container.append(node);
    this.jumpToEnd();
    return node;
  }

  /** The ids of the messages shown that the gateway keeps, oldest first. */
  savedIds(): string[] {
    return this.saved().map((node) => node.dataset.messageId ?? "");
  }

  /** The id of the last message the gateway keeps (null: none), which a send names so
   * the gateway can refuse it if the chat changed elsewhere; undefined if not known (a
   * reply stopped before the gateway said its id). */
  lastSavedId(): string | null | undefined {
    const saved = this.saved();
    if (saved.length === 0) return null;
    return saved[saved.length - 1].dataset.messageId || undefined;
  }

  /** Messages shown that the gateway keeps: all but the refused ones it never saved. */
  private saved(): HTMLElement[] {
    return [...this.container.querySelectorAll<HTMLElement>(".message:not(.unsaved)")];
  }

  startReply(model: string): Reply {
    performance.clearMarks(RENDER_MARK); // the last reply's: one reply's marks at a time
    this.container.querySelector(".empty")?.remove();
    const reply = this.newReply(model);
    this.container.append(reply.node);
    this.follow();
    return reply;
  }

  /** Hides the replies to the last message while a regenerate answers it again. */
  holdLastReplies(): HTMLElement[] {
    const held: HTMLElement[] = [];
    let node = this.container.lastElementChild;
    while (node instanceof HTMLElement && node.classList.contains("assistant")) {
      held.push(node);
      node = node.previousElementSibling;
    }
    for (const reply of held) reply.hidden = true;
    return held;
  }

  /** The held replies go once the new one ended well (the gateway deleted them); else
   * they come back, above the one that failed, as the gateway kept them. */
  releaseReplies(held: HTMLElement[], replaced: boolean): void {
    for (const reply of held) {
      if (replaced) reply.remove();
      else reply.hidden = false;
    }
    this.refreshRegenerate();
  }

  /** Only the last reply offers to be regenerated, and only when it is the last message
   * the gateway keeps (a question another tab sent, its reply still coming, is not). */
  refreshRegenerate(): void {
    const saved = this.saved();
    const last = saved[saved.length - 1];
    for (const node of this.container.querySelectorAll(".message.assistant")) {
      node.classList.toggle("is-last", node === last);
    }
  }

  /** Keeps the newest text in view, unless the reader scrolled up. */
  follow(): void {
    if (this.following) this.container.scrollTop = this.container.scrollHeight;
  }

  private jumpToEnd(): void {
    this.following = true;
    this.container.scrollTop = this.container.scrollHeight;
  }

  private newReply(model: string): Reply {
    return new Reply(
      model,
      () => this.onRegenerate(),
      () => this.follow(),
    );
  }

  private addStoredReply(message: ChatMessage): void {
    const reply = this.newReply(message.model ?? "assistant");
    reply.node.dataset.messageId = message.id;
    if (message.provider) reply.setProvider(message.provider, message.model ?? "");
    reply.setText(message.content);
    if (message.prompt_tokens !== null || message.completion_tokens !== null) {
      const prompt = message.prompt_tokens ?? 0;
      const completion = message.completion_tokens ?? 0;
      reply.setUsage(
        { prompt, completion, total: prompt + completion },
        message.usage_accurate ?? false,
      );
    }
    if (message.error === STOPPED) reply.markStopped();
    else if (message.error && message.error_status === 429) reply.showRateLimit(message.error, null);
    else if (message.error) reply.showError(message.error, message.error_status ?? undefined);
    reply.finish(message.id);
    this.container.append(reply.node);
  }
}

/** One assistant reply, filled in as its stream events arrive. */
export class Reply {
  readonly node: HTMLElement;
  private readonly body: HTMLElement;
  private readonly meta: HTMLElement;
  private readonly origin: HTMLElement;
  private readonly usage: HTMLElement;
  private readonly copy: HTMLButtonElement;
  private text = "";
  private readonly streamed: StreamingMarkdown;
  private renderPending = false;
  private finished = false;
  /** When the next render may start: a frame's render of a very long last block (one
   * huge code block, say) is spaced out so it never takes most of the page's time. */
  private nextRenderAt = 0;

  constructor(
    model: string,
    onRegenerate: () => void,
    private readonly onRender: () => void,
  ) {
    this.origin = element("span", { className: "origin" }, model);
    this.usage = element("span", { className: "usage", hidden: true });
    this.body = element("div", { className: "message-body markdown" });
    this.streamed = new StreamingMarkdown(this.body);
    const regenerate = element(
      "button",
      { type: "button", className: "regenerate", "aria-label": "Regenerate reply" },
      "Regenerate",
    );
    regenerate.addEventListener("click", onRegenerate);
    this.copy = copyButton(() => this.text, "Copy reply");
    this.meta = element(
      "footer",
      { className: "message-meta" },
      this.origin,
      this.usage,
      this.copy,
      regenerate,
    );
    this.node = element(
      "article",
      { className: "message assistant streaming", "aria-label": "Assistant", "aria-busy": "true" },
      this.body,
      this.meta,
    );
  }

  /** The gateway took the message: the reply will be saved with this id, however it ends. */
  accept(replyId: string): void {
    this.node.dataset.messageId = replyId;
  }

  setProvider(provider: string, model: string): void {
    this.origin.textContent = model ? `${provider} · ${model}` : provider;
  }

  appendText(text: string): void {
    this.text += text;
    if (this.renderPending || this.finished) return;
    // Many deltas arrive per frame: render once per frame at most, not once per delta.
    this.renderPending = true;
    const wait = this.nextRenderAt - performance.now();
    if (wait > 0) setTimeout(() => requestAnimationFrame(() => this.renderStreamed()), wait);
    else requestAnimationFrame(() => this.renderStreamed());
  }

  /** The whole text of a reply that arrived before (from the store): rendered at ``finish``. */
  setText(text: string): void {
    this.text = text;
  }

  setUsage(tokens: TokenCounts, accurate: boolean): void {
    const kind = accurate ? "reported" : "estimated";
    this.usage.hidden = false;
    this.usage.dataset.accurate = String(accurate);
    this.usage.textContent = `${tokens.prompt} + ${tokens.completion} = ${tokens.total} tokens · ${kind}`;
    this.usage.title = accurate
      ? "Token counts reported by the provider"
      : "Token counts estimated locally; the provider reported none";
  }

  showError(message: string, status?: number): void {
    const prefix = status ? `Error ${status}: ` : "Error: ";
    this.node.classList.add("failed");
    this.node.insertBefore(
      element("p", { className: "message-error", role: "alert" }, prefix + message),
      this.meta,
    );
  }

  showRateLimit(message: string, retryAfter: number | null): void {
    // The provider's own "Please try again in 58.361s." gives way to our wait below, and
    // the gateway's "Rate limit reached on ..." to the label.
    const said = message
      .replace(STATED_WAIT, "")
      .replace(/^rate limit reached on /i, "")
      .replace(/[.\s]+$/, "");
    // A spent budget says itself when it renews: no "rate limited", no wait in seconds.
    const budget = /\bbudget\b/i.test(said);
    const wait = retryAfter && !budget ? ` Try again in ${waitFor(retryAfter)}.` : "";
    const label = budget ? "" : "Rate limited: ";
    this.node.classList.add("failed");
    this.node.insertBefore(
      element("p", { className: "message-error rate-limited", role: "alert" }, `${label}${said}.${wait}`),
      this.meta,
    );
  }

  /** Whether it arrived whole: not failed, rate limited, stopped or refused. */
  get endedWell(): boolean {
    return !["failed", "stopped", "unsaved"].some((name) => this.node.classList.contains(name));
  }

  markStopped(): void {
    this.node.classList.add("stopped");
    this.meta.prepend(element("span", { className: "stopped-label" }, "Stopped"));
  }

  /** A refused message the gateway did not keep: said here, and never regenerated. */
  markUnsaved(label: string): void {
    this.node.classList.add("unsaved");
    this.meta.prepend(element("span", { className: "unsaved-label" }, label));
  }

  finish(messageId: string | null): void {
    if (messageId) this.node.dataset.messageId = messageId;
    this.finished = true;
    this.copy.hidden = this.text === ""; // a failure with no words has nothing to copy
    // Whole, once: what was shown block by block is now exactly the reply's Markdown.
    renderMarkdown(this.body, this.text);
    this.onRender();
    this.node.classList.remove("streaming");
    this.node.removeAttribute("aria-busy");
  }

  private renderStreamed(): void {
    this.renderPending = false;
    if (this.finished) return;
    const started = performance.now();
    this.streamed.update(this.text);
    this.onRender();
    // A frame's worth of words at a time is more than the eye follows: 20 renders a second
    // at most, and fewer when one takes long (a huge last block), so that rendering never
    // takes more than about a quarter of the page's time.
    this.nextRenderAt = started + Math.max(MIN_RENDER_INTERVAL, (performance.now() - started) * 4);
  }
}

/** A wait as a person reads it: "45 s", "12 min", "3 h". */
function waitFor(seconds: number): string {
  if (seconds < 90) return `${Math.ceil(seconds)} s`;
  if (seconds < 90 * 60) return `${Math.ceil(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}
