// Model output as Markdown: parsed by marked, sanitised by DOMPurify, code highlighted by
// highlight.js. Output is untrusted: only DOMPurify's result ever reaches the DOM.
import DOMPurify from "dompurify";
import hljs from "highlight.js/lib/common";
import { Marked } from "marked";
import { copyButton } from "./clipboard";

const markdown = new Marked({ gfm: true, breaks: false, async: false });

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
  if (node instanceof HTMLAnchorElement) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

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
