// Model output as Markdown: parsed by marked, sanitised by DOMPurify, code highlighted by
// highlight.js. Output is untrusted: only DOMPurify's result ever reaches the DOM.
import DOMPurify from "dompurify";
import hljs from "highlight.js/lib/common";
import { Marked, type Token } from "marked";
import { copyButton } from "./clipboard";

// ``breaks``: a single line break in a reply (a poem, an address, lines of a list written
// without markers) stays a line break, as chat apps show it; code, lists and tables are
// their own blocks and keep their own layout.
const markdown = new Marked({ gfm: true, breaks: true, async: false });

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

// HTML a model writes is shown as the text it is, as chat apps do, not made into
// elements: a reply cannot lay out the page, and the sanitiser's parse never meets an
// ``on…=`` attribute (Chrome reports one as a CSP violation even in that inert parse).
markdown.use({
  renderer: {
    html({ text }) {
      return text.replace(/[&<>"']/g, (character) => ESCAPES[character]);
    },
    // A reply's headings sit below the page's own (the chat's title is its h1): "# Title"
    // is an h3 of a reply's size, not a 2em h1 above everything in the page's outline.
    heading({ tokens, depth }) {
      const level = Math.min(depth + 2, 6);
      return `<h${level}>${this.parser.parseInline(tokens)}</h${level}>\n`;
    },
  },
});

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  // Links leave the page in a new tab that cannot reach back to this one.
  if (node instanceof HTMLAnchorElement) leaveInNewTab(node);
  // The CSP would block an image from elsewhere (a tracking pixel), leaving a broken
  // image and a console error: it becomes a link to it instead. This runs in DOMPurify's
  // inert document, before the page's document adopts the node and would start the load.
  if (node instanceof HTMLImageElement && !servedHere(node.getAttribute("src") ?? "")) {
    node.replaceWith(imageLink(node));
  }
});

function leaveInNewTab(link: HTMLAnchorElement): void {
  link.setAttribute("target", "_blank");
  link.setAttribute("rel", "noopener noreferrer nofollow");
}

/** Whether an image's source is one the page's CSP lets it load: this origin or data:. */
function servedHere(source: string): boolean {
  try {
    const url = new URL(source, location.href);
    return url.protocol === "data:" || url.origin === location.origin;
  } catch {
    return false;
  }
}

/** An image's alt text as a link to it (or as text alone inside a link already). */
function imageLink(image: HTMLImageElement): Node {
  const document = image.ownerDocument;
  const source = image.getAttribute("src");
  const label = image.getAttribute("alt")?.trim() || "image";
  if (!source || image.closest("a")) return document.createTextNode(label);
  const link = document.createElement("a");
  link.href = source;
  link.textContent = label;
  link.className = "image-link";
  leaveInNewTab(link);
  return link;
}

const PURIFY_OPTIONS = {
  RETURN_DOM_FRAGMENT: true as const,
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select"],
  FORBID_ATTR: ["style"],
};

/** The performance mark each render leaves, with the characters it parsed: DevTools'
 * timeline shows them, and the browser tests count them. */
export const RENDER_MARK = "modelway:markdown";

/** Replaces ``target``'s content with ``text`` rendered as sanitised, highlighted Markdown. */
export function renderMarkdown(target: HTMLElement, text: string): void {
  target.replaceChildren(fragmentOf(markdown.parse(text) as string));
  performance.mark(RENDER_MARK, { detail: { characters: text.length } });
}

/**
 * A reply's Markdown while it streams in. Each update parses only what follows the blocks
 * already shown that no later text can change (every block before the last one), and
 * redraws only the last block: a long reply costs each frame what its last paragraph
 * costs, not the whole reply again (parse, sanitise, highlight, layout). The reply is
 * rendered whole once it has ended (``renderMarkdown``), which settles what a block seen
 * alone can get wrong (a link defined further down, a list with a blank line in it).
 */
export class StreamingMarkdown {
  /** Characters of the text (as it came) shown as settled blocks. */
  private settled = 0;
  /** The nodes of the last block, redrawn by each update. */
  private live: ChildNode[] = [];

  constructor(private readonly target: HTMLElement) {}

  update(text: string): void {
    const tail = text.slice(this.settled);
    const tokens = markdown.lexer(tail);
    const last = lastBlock(tokens);
    const settled = tokens.slice(0, last);
    const settledText = settled.map((token) => token.raw).join("");
    let live: Token[] = tokens;
    // The tokens' text is the tail as the lexer reads it ("\r\n" as "\n"); anything else
    // (never seen) settles nothing, and the tail is drawn whole.
    if (settled.length > 0 && tail.replace(/\r\n?/g, "\n").startsWith(settledText)) {
      this.clearLive();
      this.target.append(fragmentOf(markdown.parser(settled) as string));
      this.settled += lengthAsItCame(tail, settledText.length);
      live = tokens.slice(last);
    }
    this.clearLive();
    const fragment = fragmentOf(markdown.parser(live) as string);
    this.live = [...fragment.childNodes];
    this.target.append(fragment);
    performance.mark(RENDER_MARK, { detail: { characters: tail.length } });
  }

  private clearLive(): void {
    for (const node of this.live) node.remove();
    this.live = [];
  }
}

/** How many characters of ``text`` the lexer read as its first ``read`` ("\r\n" is one). */
function lengthAsItCame(text: string, read: number): number {
  if (!text.includes("\r")) return read;
  let position = 0;
  for (let counted = 0; counted < read && position < text.length; counted += 1) {
    position += text.startsWith("\r\n", position) ? 2 : 1;
  }
  return position;
}

/** Where the last block starts: blank lines after it are part of it (more may follow). */
function lastBlock(tokens: Token[]): number {
  let last = tokens.length - 1;
  while (last > 0 && tokens[last].type === "space") last -= 1;
  return Math.max(last, 0);
}

/** ``html`` sanitised, with its code highlighted and given a Copy button. */
function fragmentOf(html: string): DocumentFragment {
  const fragment = DOMPurify.sanitize(html, PURIFY_OPTIONS);
  for (const code of fragment.querySelectorAll<HTMLElement>("pre > code")) {
    highlight(code);
    const pre = code.parentElement as HTMLElement;
    pre.classList.add("code-block");
    pre.prepend(copyButton(() => code.textContent ?? "", "Copy code"));
  }
  return fragment;
}

/**
 * Colours a code block in the language its fence names (```python). A block that names
 * none, or one highlight.js does not know, stays plain text: models tag the code they
 * write, so an untagged block is mostly output, a log, a shell session or prose, and
 * highlight.js's guess at a language reads such text as YAML or CSS (a short snippet
 * gives it little to go on). Wrong colours mislead more than none help, as on GitHub,
 * which shows an untagged block plain too; and the block looks the same while it streams
 * in and once it has ended.
 */
function highlight(code: HTMLElement): void {
  // highlight.js reads textContent and writes escaped spans, so it adds no markup of its own.
  const language = /language-([\w+#.-]+)/.exec(code.className)?.[1];
  code.classList.add("hljs");
  if (!language || !hljs.getLanguage(language)) return;
  const result = hljs.highlight(code.textContent ?? "", { language, ignoreIllegals: true });
  code.innerHTML = result.value;
  code.dataset.language = result.language ?? language;
}
