// A test-only worker: POST a list of conformance cases (token vectors), or {http: [...]} (HTTP
// vectors with their configurations), get each verdict as computed by the package inside
// workerd (sync = pure wasm, async = crypto.subtle).
import * as api from "tokengate";
import { runCase, mismatch, runHttpCase, httpMismatch } from "./vectors.mjs";

export default {
  async fetch(request) {
    const body = await request.json();
    const out = [];
    if (Array.isArray(body)) {
      for (const c of body) {
        for (const how of ["sync", "async"]) {
          const why = mismatch(c, await runCase(api, c, how));
          out.push({ name: c.name, how, ok: why === null, why });
        }
      }
    } else {
      for (const c of body.http) {
        for (const how of ["sync", "async"]) {
          const why = httpMismatch(c, await runHttpCase(api, c, c.configDoc, how));
          out.push({ name: c.name, how, ok: why === null, why });
        }
      }
    }
    return Response.json(out);
  },
};
