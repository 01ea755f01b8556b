// The key pickers of the usage and request-log filters, and the names the log shows for
// key ids: one listing of keys (the first 200 by name) shared by both.
import { element } from "../elements";
import { keys } from "./api";
import { keyStart } from "./format";

const MOST = 200;

/** Fills ``select`` (which already has its "all keys" option); the keys' names by id. */
export async function fillKeyChoices(select: HTMLSelectElement): Promise<Map<string, string>> {
  const page = await keys
    .list({ status: "all", sort: "name", order: "asc", limit: MOST })
    .catch(() => null);
  const names = new Map<string, string>();
  for (const key of page?.keys ?? []) {
    names.set(key.id, key.name);
    select.append(element("option", { value: key.id }, `${key.name} (${keyStart(key.prefix)})`));
  }
  return names;
}
