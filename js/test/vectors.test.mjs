// Every conformance case through the installed-shape package in Node: the same verdict and the
// same error code as the Rust core's own replay. Three ways per case: verifySync with
// node:crypto for the signature, verifySync with the pure-wasm backend, and async verify();
// then once more through the verified-token cache.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as api from "../src/node.mjs";
import { optionsFor, requestFor, mismatch, runCase } from "./helpers/vectors.mjs";
import { loadGroups } from "./helpers/vectors-node.mjs";

const groups = loadGroups();

test("the vector directory has cases", () => {
  assert.ok(groups.length > 0, "no tests/vectors/*.json");
  assert.ok(groups.reduce((n, g) => n + g.cases.length, 0) > 100);
});

for (const g of groups) {
  test(`vectors ${g.file}: ${g.cases.length} cases agree with the core`, async () => {
    const failures = [];
    for (const c of g.cases) {
      for (const [how, extra] of [["sync", {}], ["sync", { crypto: "wasm" }], ["async", {}]]) {
        const why = mismatch(c, await runCase(api, c, how, extra));
        if (why) failures.push(`${c.name} [${how}${extra.crypto ? " wasm" : ""}]: ${why}`);
      }
      // Second verification on the same verifier: answered by the verified-token cache for
      // accepted tokens, which must give the same verdict.
      const v = api.JwtVerifier.create(optionsFor(c));
      const outcomes = [];
      for (let i = 0; i < 2; i++) {
        try {
          outcomes.push({ claims: v.verifySync(c.token, requestFor(c)) });
        } catch (error) {
          outcomes.push({ error });
        }
      }
      const why = mismatch(c, outcomes[1]);
      if (why) failures.push(`${c.name} [cached]: ${why}`);
    }
    assert.deepEqual(failures, []);
  });
}
