// An Express API behind tokengate, configured by the same file as every other example
// (../tokengate.json: Cognito pool, route rules, forwarded claims).
//
//   node server.mjs                       # 127.0.0.1:8080, configuration ../tokengate.json
//   TOKENGATE_CONFIG=my.json PORT=9000 HOST=0.0.0.0 node server.mjs
import express from "express";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { JwtVerifier } from "tokengate";
import { tokengate } from "./tokengate-middleware.mjs";

/** The application: tokengate first, then the routes it protects. */
export function createApp(verifier) {
  const app = express();
  app.disable("x-powered-by");
  app.use(tokengate(verifier)); // before any route: a refused request never reaches Express routing
  app.get("/health", (req, res) => res.json({ ok: true }));
  app.get("/orders", (req, res) => {
    res.json({ orders: [], client_id: req.headers["x-tokengate-client-id"] ?? null, route: req.tokengate.route });
  });
  app.post("/orders", (req, res) => {
    res.status(201).json({ created: true, client_id: req.tokengate.claims.client_id });
  });
  return app;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const path = process.env.TOKENGATE_CONFIG ?? new URL("../tokengate.json", import.meta.url);
  const verifier = JwtVerifier.fromConfig(JSON.parse(readFileSync(path, "utf8")));
  const host = process.env.HOST ?? "127.0.0.1";
  const server = createApp(verifier).listen(Number(process.env.PORT ?? 8080), host, () => {
    console.log(`listening on http://${host}:${server.address().port}`);
  });
}
