// The key and team pickers of the usage and request-log filters, and the names the log
// shows for key ids. A picker is a text field whose suggestions — a <datalist>, so the
// browser draws the list and gives it its keyboard use and accessibility — are asked of
// the server as the user types: any of thousands of keys or teams is a few letters away,
// and no page ever loads them all.
import { element } from "../elements";
import { keys, usage } from "./api";
import { keyStart } from "./format";
import type { KeyView } from "./types";
import { debounce, field } from "./ui";

/** Suggestions offered at a time; typing narrows them. */
const SUGGESTIONS = 20;
/** Keys the API lists at once, and names by id at once (``?id=``): a log page's worth. */
const MOST_IDS = 200;
/** The longest search the keys listing takes (``q``). */
const MOST_QUERY = 200;
/** A suggestion's text: the key's name, then how its secret starts. */
const CHOICE = /^(.*) \(mw-([^\s()]+)…\)$/s;

/** Key names by id: those the pickers were shown, and those asked for by id. */
export class KeyNames {
  /** null: no key has that id (it is not asked for again). */
  private readonly names = new Map<string, string | null>();

  learn(found: KeyView[]): void {
    for (const key of found) this.names.set(key.id, key.name);
  }

  /** Asks the server, once, for the names of the ids not known yet. */
  async lookUp(ids: (string | null)[]): Promise<void> {
    const unknown = [...new Set(ids)]
      .filter((id): id is string => id !== null && !this.names.has(id))
      .slice(0, MOST_IDS);
    if (unknown.length === 0) return;
    // On failure the ids are shown, and asked for again with the next page.
    const page = await keys.list({ id: unknown, status: "all", limit: MOST_IDS }).catch(() => null);
    if (page === null) return;
    this.learn(page.keys);
    for (const id of unknown) if (!this.names.has(id)) this.names.set(id, null);
  }

  /** The key's name where known, else its id; a dash for no key (the master key, open mode). */
  name(id: string | null): string {
    return id === null ? "—" : (this.names.get(id) ?? id);
  }
}

/** A labelled text field whose suggestions the server gives for what is typed. */
abstract class SuggestField {
  readonly wrap: HTMLElement;
  readonly input: HTMLInputElement;
  private readonly list: HTMLDataListElement;
  private asked = 0;

  constructor(scope: string, name: string, label: string) {
    const listId = `${scope}-${name}-choices`;
    const made = field(scope, name, label, {
      type: "search",
      list: listId,
      autocomplete: "off",
      spellcheck: "false",
      placeholder: "any",
    });
    this.wrap = made.wrap;
    this.input = made.input;
    this.list = element("datalist", { id: listId });
    this.wrap.append(this.list);
    this.input.addEventListener("input", debounce(() => void this.refresh()));
  }

  /** The suggestions for ``text`` (the first ones by name when it is empty); null keeps
   * those shown. */
  protected abstract suggest(text: string): Promise<string[] | null>;

  /** Suggestions for the text in the field. */
  async refresh(): Promise<void> {
    const asked = ++this.asked;
    const texts = await this.suggest(this.input.value.trim()).catch(() => null);
    if (texts === null || asked !== this.asked) return; // kept, failed, or overtaken by typing
    this.list.replaceChildren(...texts.map((value) => element("option", { value })));
  }

  /** Calls ``handler`` when a suggestion is picked or the field is cleared, not per key press. */
  onPick(handler: () => void): void {
    this.input.addEventListener("input", (event) => {
      // A picked suggestion comes as a replacement (Chrome, Safari) or as a plain event
      // (Firefox); so does the search field's clear button.
      const typed = event instanceof InputEvent && event.inputType !== "insertReplacementText";
      if (!typed || this.input.value === "") handler();
    });
  }
}

/** Picks a key by name: suggestions read "name (mw-abc12345…)", so keys of one name differ. */
export class KeyPicker extends SuggestField {
  /** Each suggestion shown so far, and the id of its key. */
  private readonly ids = new Map<string, string>();

  constructor(
    scope: string,
    private readonly names: KeyNames,
  ) {
    super(scope, "key_id", "Key");
  }

  /**
   * The id of the key the field names — a suggestion, a key's exact name or its id —
   * or undefined when it is empty (every key). Throws, saying why, when it names no key
   * or several.
   */
  async keyId(): Promise<string | undefined> {
    const text = this.input.value.trim();
    if (!text) return undefined;
    const known = this.ids.get(text);
    if (known !== undefined) return known;
    const found = (await this.search(CHOICE.exec(text)?.[2] ?? text, MOST_IDS)).filter(
      (key) => key.name === text || key.id === text || this.choice(key) === text,
    );
    if (found.length === 1) return found[0].id;
    throw new Error(
      found.length === 0
        ? `Key: no key is named “${text}”; pick one from the list`
        : `Key: ${found.length} keys are named “${text}”; pick one from the list`,
    );
  }

  protected async suggest(text: string): Promise<string[] | null> {
    if (this.ids.has(text)) return null; // a suggestion was just picked
    return (await this.search(text)).map((key) => this.choice(key));
  }

  private async search(text: string, limit = SUGGESTIONS): Promise<KeyView[]> {
    if (text.length > MOST_QUERY) return []; // longer than any name
    const page = await keys.list({
      q: text || undefined,
      status: "all",
      sort: "name",
      order: "asc",
      limit,
    });
    this.names.learn(page.keys);
    return page.keys;
  }

  private choice(key: KeyView): string {
    const text = `${key.name} (${keyStart(key.prefix)})`;
    this.ids.set(text, key.id);
    return text;
  }
}

/** Picks a team: every team the gateway knows of, made here or only named by keys and usage. */
export class TeamPicker extends SuggestField {
  constructor(scope: string) {
    super(scope, "team", "Team");
  }

  protected suggest(text: string): Promise<string[]> {
    return usage.teams(text, SUGGESTIONS);
  }

  /** The team typed or picked, or undefined for every team. */
  team(): string | undefined {
    return this.input.value.trim() || undefined;
  }
}
