// Model output as Markdown: parsed by marked, sanitised by DOMPurify, code highlighted by
// highlight.js. Output is untrusted: only DOMPurify's result ever reaches the DOM.
import DOMPurify from "dompurify";
import hljs from "highlight.js/lib/common";
import { Marked } from "marked";
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

/** Replaces ``target``'s content with ``text`` rendered as sanitised, highlighted Markdown. */
export function renderMarkdown(target: HTMLElement, text: string): void {
  const html = markdown.parse(text) as string;
  const fragment = DOMPurify.sanitize(html, PURIFY_OPTIONS);
  for (const code of fragment.querySelectorAll<HTMLElement>("pre > code")) {
    highlight(code);
    const pre = code.parentElement as HTMLElement;
    pre.classList.add("code-block");
    pre.prepend(copyButton(() => code.textContent ?? "", "Copy code"));
  }
  target.replaceChildren(fragment);
}

function highlight(code: HTMLElement): void {
  // highlight.js reads textContent and writes escaped spans, so it adds no markup of its own.
  const language = /language-([\w+#.-]+)/.exec(code.className)?.[1];
  const source = code.textContent ?? "";
  const result =
    language && hljs.getLanguage(language)
      ? hljs.highlight(source, { language, ignoreIllegals: true })
      : hljs.highlightAuto(source);
  code.innerHTML = result.value;
  code.classList.add("hljs");
  if (result.language) code.dataset.language = result.language;
}
