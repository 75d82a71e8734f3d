// Runs in Chromium: the browser entry verifies a token (JWKS fetched from this origin), shows
// the error code of a bad one, and replays the sampled conformance cases (token and HTTP
// vectors) it is given.
import * as api from "tokengate";
import { runCase, mismatch, runHttpCase, httpMismatch } from "/test/helpers/vectors.mjs";

const { CognitoVerifier, TokenError } = api;
try {
  const fx = await (await fetch("/fixture.json")).json();
  const v = CognitoVerifier.create({
    userPoolId: fx.poolId,
    tokenUse: "access",
    clientId: fx.clientId,
    jwksUri: `${location.origin}/jwks.json`,
  });
  const claims = await v.verify(fx.token);
  document.querySelector("#ok").textContent = claims.client_id;
  try {
    await v.verify(fx.badToken);
    document.querySelector("#bad").textContent = "accepted!";
  } catch (e) {
    document.querySelector("#bad").textContent = e instanceof TokenError ? e.code : `not a TokenError: ${e}`;
  }
  const failures = [];
  for (const c of fx.cases) {
    for (const how of ["sync", "async"]) {
      const why = mismatch(c, await runCase(api, c, how));
      if (why) failures.push(`${c.name} [${how}]: ${why}`);
    }
  }
  for (const c of fx.http) {
    for (const how of ["sync", "async"]) {
      const why = httpMismatch(c, await runHttpCase(api, c, c.configDoc, how));
      if (why) failures.push(`http ${c.name} [${how}]: ${why}`);
    }
  }
  window.__result = { failures, checked: fx.cases.length * 2 + fx.http.length * 2 };
} catch (e) {
  window.__result = { error: String(e && e.stack ? e.stack : e) };
}
