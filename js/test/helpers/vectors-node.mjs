// Loads tests/vectors/*.json (Node only).
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const VECTORS_DIR = fileURLToPath(new URL("../../../tests/vectors/", import.meta.url));

export function loadGroups() {
  return readdirSync(VECTORS_DIR)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => ({ file: f, ...JSON.parse(readFileSync(VECTORS_DIR + f, "utf8")) }));
}

/** A deterministic sample across groups: every accept in accept.json plus every nth case. */
export function sample(groups, every) {
  const out = [];
  let i = 0;
  for (const g of groups) {
    for (const c of g.cases) {
      if (g.group === "accept" || i++ % every === 0) out.push({ group: g.group, ...c });
    }
  }
  return out;
}
