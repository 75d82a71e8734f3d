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

export const HTTP_VECTORS_DIR = fileURLToPath(new URL("../../../tests/vectors/http/", import.meta.url));

/** tests/vectors/http/*.json, each case carrying its configuration. */
export function loadHttpCases() {
  const out = [];
  for (const f of readdirSync(HTTP_VECTORS_DIR).filter((f) => f.endsWith(".json")).sort()) {
    const doc = JSON.parse(readFileSync(HTTP_VECTORS_DIR + f, "utf8"));
    for (const c of doc.cases) out.push({ file: f, ...c, configDoc: doc.configs[c.config] });
  }
  return out;
}
