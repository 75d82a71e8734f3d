//! The request decision, without I/O: request facts in, [`Outcome`] out. The core decides on
//! the token; this module maps the route to what the core must check and the verdict to HTTP.

use serde_json::{Map, Value};
use tokengate::{Decision, Error, ErrorCode, Request, Verdict, Verified, Verifier};

use crate::config::{Config, Default, Mode};
use crate::rules::{self, Access, Rule};

/// Seconds a client is asked to wait after a 503 `jwks_unavailable`.
pub const JWKS_RETRY_AFTER_S: u64 = 5;

/// The `Authorization` header(s) of a request.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Authorization {
    /// None sent.
    Absent,
    /// Exactly one, raw bytes.
    One(Vec<u8>),
    /// Several: refused (RFC 6750 §2: one method, one token).
    Many,
}

/// What the filter knows about a request when it decides.
#[derive(Clone, Debug)]
pub struct RequestFacts {
    /// `:method`.
    pub method: String,
    /// `:path`, query included (it is cut before matching).
    pub path: String,
    /// The `Authorization` header(s).
    pub authorization: Authorization,
    /// base64url SHA-256 of the client certificate (RFC 8705 §3.1), when one was presented.
    pub cert_thumbprint: Option<String>,
}

/// A request let through.
#[derive(Debug)]
pub struct Allowed {
    /// Headers to set upstream (claims named in `forward`).
    pub forward: Vec<(String, String)>,
    /// The verified `client_id`, for the rate limit (`None` on anonymous routes).
    pub client_id: Option<String>,
    /// The audit record.
    pub decision: Decision,
}

/// A request refused (or, in report mode, that would be refused).
#[derive(Clone, Debug)]
pub struct Denial {
    /// The stable code.
    pub code: ErrorCode,
    /// HTTP status.
    pub status: u16,
    /// `WWW-Authenticate` value, if the answer carries one.
    pub www_authenticate: Option<String>,
    /// `Retry-After` seconds (429, 503).
    pub retry_after_s: Option<u64>,
    /// `{"error": code, "message": …}`.
    pub body: String,
    /// The audit record.
    pub decision: Decision,
}

/// What to do with a request.
#[derive(Debug)]
pub enum Outcome {
    /// Let it through.
    Allow(Allowed),
    /// Refuse it.
    Deny(Denial),
    /// A JWKS fetch under way may change the verdict: pause, and decide again when keys arrive.
    /// The denial is the answer if the wait ends without new keys.
    Wait(Denial),
}

/// The configuration and the verifier of one worker.
#[derive(Debug)]
pub struct Gate {
    config: Config,
    verifier: Verifier,
}

impl Gate {
    /// A gate for a validated configuration.
    pub fn new(config: Config, verifier: Verifier) -> Gate {
        Gate { config, verifier }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The verifier (to drive its key caches).
    pub fn verifier_mut(&mut self) -> &mut Verifier {
        &mut self.verifier
    }

    /// The verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Decide on one request at `now` (seconds).
    pub fn decide(&mut self, req: &RequestFacts, now: u64) -> Outcome {
        let path = rules::path_of(&req.path);
        let rule_index = if rules::is_normalized(path) {
            self.config
                .rules
                .iter()
                .position(|r| r.matches(&req.method, path))
        } else {
            None
        };
        let rule = rule_index.and_then(|i| self.config.rules.get(i));
        let route = rule.map_or("default", |r| r.name.as_str()).to_owned();
        let (access, default_deny) = match rule {
            Some(r) => (r.access.clone(), false),
            None => (Access::Token(None), self.config.default == Default::Deny),
        };
        let scopes = match access {
            Access::Anonymous => {
                let decision = Decision {
                    verdict: Verdict::Allow,
                    code: None,
                    iss: None,
                    client_id: None,
                    scopes: None,
                    kid: None,
                    jti_sha256: None,
                    route: Some(route),
                    cached: false,
                };
                return Outcome::Allow(Allowed {
                    forward: Vec::new(),
                    client_id: None,
                    decision,
                });
            }
            Access::Token(scopes) => scopes,
        };
        let listed: Vec<String> = rule
            .map(|r| r.listed_scopes().into_iter().map(String::from).collect())
            .unwrap_or_default();
        let token = match bearer(&req.authorization) {
            Ok(t) => t,
            Err((code, message)) => {
                let decision = Decision::denied(code).route(route);
                return Outcome::Deny(self.denial(code, message, &listed, decision));
            }
        };
        let mut request = Request::at(now);
        if let Some(s) = scopes.as_ref() {
            request = request.scopes(s);
        }
        if let Some(tp) = req.cert_thumbprint.as_deref() {
            request = request.cert_thumbprint(tp);
        }
        let result = self.verifier.verify(token, &request);
        let mut decision = if self.config.audit_log {
            Decision::from_result(&result).route(route)
        } else {
            // Nobody reads the record: skip the jti hash and the claim copies.
            let verdict = if result.is_ok() {
                Verdict::Allow
            } else {
                Verdict::Deny
            };
            let mut d = Decision::denied(ErrorCode::TokenMissing);
            d.verdict = verdict;
            d.code = result.as_ref().err().map(Error::code);
            d
        };
        if let Some(denied) = route_client_check(rule, &result) {
            decision.verdict = Verdict::Deny;
            decision.code = Some(denied);
            return Outcome::Deny(self.denial(
                denied,
                "this client may not use this route",
                &listed,
                decision,
            ));
        }
        if let Err(e) = &result {
            let denial = self.denial(e.code(), e.message(), &listed, decision);
            return if e.fetch_pending() {
                Outcome::Wait(denial)
            } else {
                Outcome::Deny(denial)
            };
        }
        let Ok(verified) = result else {
            // Unreachable: errors returned above. Fail closed all the same.
            let decision = Decision::denied(ErrorCode::TokenMalformed);
            return Outcome::Deny(self.denial(
                ErrorCode::TokenMalformed,
                "internal",
                &listed,
                decision,
            ));
        };
        if default_deny {
            decision.verdict = Verdict::Deny;
            decision.code = Some(ErrorCode::ScopeInsufficient);
            return Outcome::Deny(self.denial(
                ErrorCode::ScopeInsufficient,
                "no rule allows this request",
                &listed,
                decision,
            ));
        }
        Outcome::Allow(Allowed {
            forward: self.forwarded(&verified),
            client_id: verified.claims.client_id().map(String::from),
            decision,
        })
    }

    /// The reply for `code`, with the rule's scopes listed for `scope_insufficient`.
    pub fn denial(
        &self,
        code: ErrorCode,
        message: &str,
        required_scopes: &[String],
        mut decision: Decision,
    ) -> Denial {
        let listed: Vec<&str> = required_scopes.iter().map(String::as_str).collect();
        decision.verdict = Verdict::Deny;
        decision.code = Some(code);
        let retry_after_s = match code {
            ErrorCode::JwksUnavailable => Some(JWKS_RETRY_AFTER_S),
            ErrorCode::RateLimited => Some(1),
            _ => None,
        };
        let mut body = Map::new();
        body.insert("error".into(), code.as_str().into());
        body.insert("message".into(), message.into());
        Denial {
            code,
            status: code.http_status(),
            www_authenticate: code.www_authenticate(&self.config.realm, &listed),
            retry_after_s,
            body: Value::Object(body).to_string(),
            decision,
        }
    }

    /// One JSON audit line for a decision.
    pub fn audit_line(&self, decision: &Decision, status: u16, req: &RequestFacts) -> String {
        let mut extra = Map::new();
        extra.insert("mode".into(), self.config.mode.as_str().into());
        extra.insert("status".into(), status.into());
        extra.insert("method".into(), req.method.clone().into());
        extra.insert("path".into(), rules::path_of(&req.path).into());
        decision.to_json_with(extra)
    }

    /// Whether denials are enforced.
    pub fn enforcing(&self) -> bool {
        self.config.mode == Mode::Enforce
    }

    fn forwarded(&self, verified: &Verified) -> Vec<(String, String)> {
        self.config
            .forward
            .iter()
            .filter_map(|f| {
                let value = match verified.claims.get(&f.claim)? {
                    Value::String(s) => s.clone(),
                    Value::Null => return None,
                    other => other.to_string(),
                };
                // A claim is attacker-influenced text only up to the issuer's signature, but a
                // header must never carry a line break whatever the issuer signed.
                if value.chars().any(char::is_control) {
                    return None;
                }
                Some((f.header.clone(), value))
            })
            .collect()
    }
}

/// The token from one `Authorization: Bearer <token>` header, byte for byte.
///
/// # Errors
/// `token_missing` when there is no Bearer credential (RFC 6750 §3.1), `token_malformed` for
/// several headers or a token that is not UTF-8.
pub fn bearer(auth: &Authorization) -> Result<&str, (ErrorCode, &'static str)> {
    let value = match auth {
        Authorization::Absent => {
            return Err((
                ErrorCode::TokenMissing,
                "the request carries no access token",
            ))
        }
        Authorization::Many => {
            return Err((
                ErrorCode::TokenMalformed,
                "the request carries several Authorization headers",
            ))
        }
        Authorization::One(v) => v.as_slice(),
    };
    let (scheme, rest) = value.split_at(value.len().min(6));
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err((
            ErrorCode::TokenMissing,
            "the request carries no Bearer token",
        ));
    }
    let token = match rest.split_first() {
        None => &[][..],
        Some((b' ', token)) => token,
        Some(_) => {
            return Err((
                ErrorCode::TokenMissing,
                "the request carries no Bearer token",
            ))
        }
    };
    std::str::from_utf8(token)
        .map_err(|_| (ErrorCode::TokenMalformed, "the token is not valid text"))
}

/// The RFC 8705 §3.1 thumbprint (base64url SHA-256 of the DER certificate) from Envoy's
/// `connection.sha256_peer_certificate_digest` property (lower-case hex). `None` when no
/// certificate was presented or the value is not 32 hex-encoded bytes.
pub fn thumbprint_from_hex(hex: &[u8]) -> Option<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    if hex.len() != 64 {
        return None;
    }
    let digit = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    let bytes = hex
        .chunks(2)
        .map(|pair| match pair {
            [h, l] => Some(digit(*h)? << 4 | digit(*l)?),
            _ => None,
        })
        .collect::<Option<Vec<u8>>>()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// Per-route client allow-list, checked where the core checks its own (before scopes): an
/// accepted token, or one refused only for scopes, from a client the rule does not list.
fn route_client_check(rule: Option<&Rule>, result: &Result<Verified, Error>) -> Option<ErrorCode> {
    let allowed = rule?.client_ids.as_ref()?;
    let client = match result {
        Ok(v) => v.claims.client_id(),
        Err(e) if e.code() == ErrorCode::ScopeInsufficient => e.claims()?.client_id(),
        Err(_) => return None,
    };
    match client {
        Some(c) if allowed.contains(c) => None,
        _ => Some(ErrorCode::ClientNotAllowed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprints_convert_from_hex() {
        let hex = "62976581a35bd26828b72cda3a1551044b9bdb9c189111e340da85d49c312bda";
        assert_eq!(
            thumbprint_from_hex(hex.as_bytes()).as_deref(),
            Some("YpdlgaNb0mgotyzaOhVRBEub25wYkRHjQNqF1JwxK9o")
        );
        assert_eq!(thumbprint_from_hex(b""), None);
        assert_eq!(thumbprint_from_hex(&[b'g'; 64]), None);
    }

    #[test]
    fn bearer_extraction_is_exact() {
        let one = |s: &str| Authorization::One(s.as_bytes().to_vec());
        assert_eq!(bearer(&one("Bearer abc")), Ok("abc"));
        assert_eq!(bearer(&one("bearer abc")), Ok("abc"));
        assert_eq!(
            bearer(&one("Bearer  abc")),
            Ok(" abc"),
            "the core refuses it, not the host"
        );
        assert_eq!(bearer(&one("Bearer")), Ok(""));
        assert_eq!(
            bearer(&one("Basic abc")).unwrap_err().0,
            ErrorCode::TokenMissing
        );
        assert_eq!(
            bearer(&one("Bearerabc")).unwrap_err().0,
            ErrorCode::TokenMissing
        );
        assert_eq!(
            bearer(&Authorization::Many).unwrap_err().0,
            ErrorCode::TokenMalformed
        );
        assert_eq!(
            bearer(&Authorization::Absent).unwrap_err().0,
            ErrorCode::TokenMissing
        );
        assert_eq!(
            bearer(&Authorization::One(b"Bearer \xff".to_vec()))
                .unwrap_err()
                .0,
            ErrorCode::TokenMalformed
        );
    }

    #[test]
    fn routes_decide_what_is_needed() {
        let cfg = Config::parse(
            br#"{
              "providers": [{"issuer": "https://i", "client_ids": ["a"], "jwks": {"keys": []}}],
              "rules": [
                {"match": {"prefix": "/health"}, "allow": "anonymous"},
                {"match": {"prefix": "/orders"}, "scopes": {"all": ["orders/read"]}}
              ]
            }"#,
        )
        .unwrap();
        let v = cfg.verifier(0, 1).unwrap();
        let mut gate = Gate::new(cfg, v);
        let req = |path: &str, auth: Authorization| RequestFacts {
            method: "GET".into(),
            path: path.into(),
            authorization: auth,
            cert_thumbprint: None,
        };
        assert!(matches!(
            gate.decide(&req("/health?x", Authorization::Absent), 1),
            Outcome::Allow(_)
        ));
        let Outcome::Deny(d) = gate.decide(&req("/health/../orders", Authorization::Absent), 1)
        else {
            panic!("a dot-segment path gets the default")
        };
        assert_eq!(d.code, ErrorCode::TokenMissing);
        assert_eq!(
            d.www_authenticate.as_deref(),
            Some("Bearer realm=\"tokengate\"")
        );
        let Outcome::Deny(d) = gate.decide(
            &req("/orders", Authorization::One(b"Bearer a.b.c".to_vec())),
            1,
        ) else {
            panic!()
        };
        assert_eq!(d.status, 401);
        assert!(d.body.starts_with("{\"error\":\""), "{}", d.body);
    }
}
