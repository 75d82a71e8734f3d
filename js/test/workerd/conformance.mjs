// A test-only worker: POST a list of conformance cases, get each verdict as computed by the
// package inside workerd (sync = pure wasm, async = crypto.subtle).
import * as api from "tokengate";
import { runCase, mismatch } from "./vectors.mjs";

export default {
  async fetch(request) {
    const cases = await request.json();
    const out = [];
    for (const c of cases) {
      for (const how of ["sync", "async"]) {
        const why = mismatch(c, await runCase(api, c, how));
        out.push({ name: c.name, how, ok: why === null, why });
      }
    }
    return Response.json(out);
  },
};
