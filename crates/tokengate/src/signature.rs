//! RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 §3.3) and ES256 (ECDSA P-256 with SHA-256,
//! RFC 7518 §3.4) verification.
//!
//! RSA keys are parsed once into [`RsaVerifyingKey`], which keeps the modulus in the limb form
//! of [`tokengate_mont`] with its Montgomery constants (and `R² mod n`), so a verification with
//! e = 65537 costs one conversion, 16 squarings and one multiplication of the modulus size,
//! on the stack. rsa 0.9 recomputes those constants on every call; that is most of its
//! verify time. P-256 keys keep comb tables for `G` and `Q` ([`EcVerifyingKey`]).

mod es256;
use alloc::vec::Vec;
use tokengate_mont as mont;

use sha2::{Digest, Sha256};

pub use es256::EcVerifyingKey;

use crate::policy::Algorithm;

/// The DER prefix of `DigestInfo { sha256, NULL }` (RFC 8017 §9.2, note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// Largest RSA modulus accepted, to bound the work a hostile JWKS can ask for.
pub const MAX_RSA_BITS: usize = mont::MAX_BITS;

/// A verifying key selected from a key set.
#[derive(Clone, Debug)]
pub enum PublicKey {
    /// An RSA public key, precomputed for Montgomery exponentiation.
    Rsa(RsaVerifyingKey),
    /// A P-256 public key (point validated on the curve), with its comb tables.
    Ec(EcVerifyingKey),
}

impl PublicKey {
    /// Whether this key type can verify `alg`.
    pub fn fits(&self, alg: Algorithm) -> bool {
        matches!(
            (self, alg),
            (PublicKey::Rsa(_), Algorithm::Rs256) | (PublicKey::Ec(_), Algorithm::Es256)
        )
    }

    /// The key as a DER `SubjectPublicKeyInfo` (RFC 5280 §4.1; RSA: RFC 8017 appendix A.1.1,
    /// P-256: RFC 5480), for a host whose own crypto checks the signature (Envoy's
    /// `verify_signature`). `None` for keys such a host may refuse where the core would verify:
    /// RSA exponents above 32 bits (BoringSSL caps them at 33 bits).
    pub fn spki_der(&self) -> Option<Vec<u8>> {
        match self {
            PublicKey::Rsa(k) => k.spki_der(),
            PublicKey::Ec(k) => Some(k.spki_der()),
        }
    }
}

/// A JWS signature as a host's crypto takes it (Envoy's `verify_signature`, BoringSSL's
/// `EVP_DigestVerify`): RS256 octets as they are; ES256's `r || s` (RFC 7518 §3.4) as the DER
/// `ECDSA-Sig-Value` of RFC 3279. `None` for an ES256 signature that is not 64 octets.
pub fn host_signature(alg: Algorithm, signature: &[u8]) -> Option<Vec<u8>> {
    match alg {
        Algorithm::Rs256 => Some(signature.to_vec()),
        Algorithm::Es256 => {
            let (r, s) = signature.split_at_checked(32)?;
            if s.len() != 32 {
                return None;
            }
            let mut seq = Vec::with_capacity(72);
            der_integer(&mut seq, strip_leading_zeros(r));
            der_integer(&mut seq, strip_leading_zeros(s));
            Some(der(0x30, &seq))
        }
    }
}

/// Verifies signatures. The default [`PureRust`] backend is the core's own crypto. A host may
/// check a signature with its native crypto instead, for the same decision, through
/// [`crate::Verifier::begin`] and [`crate::Verifier::finish`] (the npm package: node:crypto,
/// WebCrypto) or [`crate::Gate::begin`], [`crate::Gate::host_check`] and
/// [`crate::Gate::finish`] (the Envoy filter: Envoy's `verify_signature`).
pub trait SignatureBackend {
    /// True only when `signature` is a valid `alg` signature by `key` over `message`.
    fn verify(&self, key: &PublicKey, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool;
}

/// RS256 with the precomputed Montgomery RSA below, ES256 with RustCrypto `p256`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PureRust;

impl SignatureBackend for PureRust {
    fn verify(&self, key: &PublicKey, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        let hash: [u8; 32] = Sha256::digest(message).into();
        match (key, alg) {
            (PublicKey::Rsa(k), Algorithm::Rs256) => k.verify_pkcs1v15_sha256(&hash, signature),
            (PublicKey::Ec(k), Algorithm::Es256) => verify_es256_prehash(k, &hash, signature),
            _ => false,
        }
    }
}

/// Verify a P1363 (`r || s`, 64 octets) ES256 signature over a SHA-256 digest. DER signatures,
/// r or s equal to zero (CVE-2022-21449) or not below the group order are rejected.
pub fn verify_es256_prehash(key: &EcVerifyingKey, hash: &[u8; 32], sig: &[u8]) -> bool {
    key.verify_prehash(hash, sig)
}

/// An RSA public key with its Montgomery constants, ready for repeated verification.
#[derive(Clone, Debug)]
pub struct RsaVerifyingKey {
    modulus: mont::PublicModulus,
    /// The modulus, big-endian with no leading zero: its length is the exact signature length
    /// (RFC 8017 §8.2.2 step 1), and a signature compares with it octet by octet.
    n: alloc::vec::Vec<u8>,
    /// Public exponent (odd, ≥ 3).
    e: u64,
    bits: usize,
}

/// Why RSA parameters cannot make a verifying key.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum RsaKeyError {
    /// Modulus is even, zero, shorter than 64 bits or longer than [`MAX_RSA_BITS`].
    Modulus,
    /// Exponent is even, below 3, or longer than 64 bits.
    Exponent,
}

impl RsaVerifyingKey {
    /// Build from big-endian modulus and exponent octets (leading zeros allowed).
    ///
    /// # Errors
    /// [`RsaKeyError`] for an unusable modulus or exponent.
    pub fn new(n_be: &[u8], e_be: &[u8]) -> Result<RsaVerifyingKey, RsaKeyError> {
        let e_be = strip_leading_zeros(e_be);
        if e_be.len() > 8 {
            return Err(RsaKeyError::Exponent);
        }
        let e = e_be.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        if e < 3 || e % 2 == 0 {
            return Err(RsaKeyError::Exponent);
        }
        let n_be = strip_leading_zeros(n_be);
        let bits = match n_be.first() {
            Some(&top) => n_be.len() * 8 - top.leading_zeros() as usize,
            None => return Err(RsaKeyError::Modulus),
        };
        if bits > MAX_RSA_BITS || n_be.last().is_none_or(|&b| b & 1 == 0) || bits < 64 {
            return Err(RsaKeyError::Modulus);
        }
        let modulus = mont::PublicModulus::new(n_be).ok_or(RsaKeyError::Modulus)?;
        Ok(RsaVerifyingKey {
            modulus,
            n: n_be.to_vec(),
            e,
            bits,
        })
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Verify an RSASSA-PKCS1-v1_5 signature whose encoded message must be exactly
    /// `00 01 FF…FF 00 || DigestInfo(SHA-256) || hash` (RFC 8017 §8.2.2, compared whole).
    /// Allocates nothing.
    pub fn verify_pkcs1v15_sha256(&self, hash: &[u8; 32], signature: &[u8]) -> bool {
        let k = self.n.len();
        let t_len = SHA256_DIGEST_INFO.len() + hash.len();
        // s < n (RFC 8017 §5.2.2 step 1): equal-length big-endian strings compare as numbers.
        if signature.len() != k || k < t_len + 11 || signature >= self.n.as_slice() {
            return false;
        }
        let mut em = [0u8; MAX_RSA_BITS / 8];
        let Some(em) = em.get_mut(..k) else {
            return false;
        };
        self.pow_e(signature, em);
        let ps_end = k - t_len - 1;
        em.first() == Some(&0)
            && em.get(1) == Some(&1)
            && em
                .get(2..ps_end)
                .is_some_and(|ps| ps.iter().all(|&b| b == 0xff))
            && em.get(ps_end) == Some(&0)
            && em.get(ps_end + 1..ps_end + 1 + SHA256_DIGEST_INFO.len())
                == Some(&SHA256_DIGEST_INFO[..])
            && em.get(k - hash.len()..) == Some(&hash[..])
    }

    /// See [`PublicKey::spki_der`].
    fn spki_der(&self) -> Option<Vec<u8>> {
        if self.e > u64::from(u32::MAX) {
            return None;
        }
        let e = self.e.to_be_bytes();
        let mut rsa_key = Vec::with_capacity(self.n.len() + 24);
        der_integer(&mut rsa_key, &self.n);
        der_integer(&mut rsa_key, strip_leading_zeros(&e));
        let rsa_key = der(0x30, &rsa_key);
        let mut bits = Vec::with_capacity(rsa_key.len() + 1);
        bits.push(0); // no unused bits
        bits.extend_from_slice(&rsa_key);
        let mut spki = Vec::with_capacity(bits.len() + 24);
        spki.extend_from_slice(&RSA_ALGORITHM_ID);
        spki.extend_from_slice(&der(0x03, &bits));
        Some(der(0x30, &spki))
    }

    /// `em = s^e mod n` as `em.len()` big-endian octets, for `s < n` given as big-endian octets.
    fn pow_e(&self, s: &[u8], em: &mut [u8]) {
        self.modulus.pow_be(s, self.e, em);
    }
}

/// Hash `message` with SHA-256 (used by hosts that run the signature step themselves).
pub fn sha256(message: &[u8]) -> [u8; 32] {
    Sha256::digest(message).into()
}

/// `AlgorithmIdentifier { rsaEncryption (1.2.840.113549.1.1.1), NULL }` (RFC 8017 A.1).
const RSA_ALGORITHM_ID: [u8; 15] = [
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// A DER element: `tag`, definite length, `content`.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 4);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        // Keys are at most MAX_RSA_BITS (1 KiB of modulus): two length octets always suffice.
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// Append a non-negative DER INTEGER from big-endian octets without leading zeros.
fn der_integer(out: &mut Vec<u8>, magnitude: &[u8]) {
    let pad = magnitude.first().is_none_or(|&b| b & 0x80 != 0);
    let mut content = Vec::with_capacity(magnitude.len() + 1);
    if pad {
        content.push(0);
    }
    content.extend_from_slice(magnitude);
    out.extend_from_slice(&der(0x02, &content));
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// `s^e mod n` through the key's arithmetic, big-endian.
    fn pow(key: &RsaVerifyingKey, s: &[u8]) -> Vec<u8> {
        let mut em = alloc::vec![0u8; key.n.len()];
        key.pow_e(s, &mut em);
        em
    }

    #[test]
    fn small_modulus_arithmetic_matches_naive_pow() {
        // n = 0xF123456789ABCDEF_0123456789ABCDEF (odd, two 64-bit limbs), e = 65537 and 3.
        let n_be: [u8; 16] = [
            0xF1, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB,
            0xCD, 0xEF,
        ];
        let n = u128::from_be_bytes(n_be);
        for e in [65537u32, 3] {
            let key = RsaVerifyingKey::new(&n_be, &e.to_be_bytes()).unwrap();
            for s in [
                0u128,
                1,
                2,
                3,
                0x1234_5678_9abc_def0_1122_3344_5566_7788,
                n - 1,
            ] {
                let mut expect: u128 = 1;
                let mut base = s % n;
                let mut e = e;
                while e > 0 {
                    if e & 1 == 1 {
                        expect = mulmod(expect, base, n);
                    }
                    base = mulmod(base, base, n);
                    e >>= 1;
                }
                assert_eq!(
                    pow(&key, &s.to_be_bytes()),
                    expect.to_be_bytes().to_vec(),
                    "s = {s:#x}"
                );
            }
        }
    }

    fn mulmod(a: u128, b: u128, n: u128) -> u128 {
        // Shift-and-add keeps every intermediate below 2n < 2^129 by reducing at each step.
        let mut result = 0u128;
        let mut a = a % n;
        let mut b = b;
        while b > 0 {
            if b & 1 == 1 {
                result = addmod(result, a, n);
            }
            a = addmod(a, a, n);
            b >>= 1;
        }
        result
    }

    fn addmod(a: u128, b: u128, n: u128) -> u128 {
        let (s, over) = a.overflowing_add(b);
        if over || s >= n {
            s.wrapping_sub(n)
        } else {
            s
        }
    }

    #[test]
    fn weak_exponents_and_even_moduli_are_refused() {
        let n = [0xC5u8; 256];
        assert_eq!(
            RsaVerifyingKey::new(&n, &[1]).unwrap_err(),
            RsaKeyError::Exponent
        );
        assert_eq!(
            RsaVerifyingKey::new(&n, &[2]).unwrap_err(),
            RsaKeyError::Exponent
        );
        assert_eq!(
            RsaVerifyingKey::new(&n, &[]).unwrap_err(),
            RsaKeyError::Exponent
        );
        assert_eq!(
            RsaVerifyingKey::new(&n, &[1, 0, 0, 0, 0, 0, 0, 0, 1]).unwrap_err(),
            RsaKeyError::Exponent
        );
        let mut even = n;
        even[255] = 0xC4;
        assert_eq!(
            RsaVerifyingKey::new(&even, &[3]).unwrap_err(),
            RsaKeyError::Modulus
        );
        assert_eq!(
            RsaVerifyingKey::new(&[0, 0], &[3]).unwrap_err(),
            RsaKeyError::Modulus
        );
        assert_eq!(
            RsaVerifyingKey::new(&[0x7F; 7], &[3]).unwrap_err(),
            RsaKeyError::Modulus
        );
        assert!(RsaVerifyingKey::new(&[0xFFu8; 1025], &[3]).is_err());
        assert!(RsaVerifyingKey::new(&[0xFFu8; 1024], &[3]).is_ok());
        let key = RsaVerifyingKey::new(&n, &[3]).unwrap();
        assert_eq!(key.bits(), 2048);
    }

    #[test]
    fn signatures_of_the_wrong_length_or_not_below_n_fail() {
        let n = [0xC5u8; 256];
        let key = RsaVerifyingKey::new(&n, &[1, 0, 1]).unwrap();
        let hash = [7u8; 32];
        assert!(!key.verify_pkcs1v15_sha256(&hash, &[0u8; 255]));
        assert!(!key.verify_pkcs1v15_sha256(&hash, &[0u8; 257]));
        assert!(!key.verify_pkcs1v15_sha256(&hash, &[0xC5u8; 256]));
        assert!(!key.verify_pkcs1v15_sha256(&hash, &[0xFFu8; 256]));
        assert!(!key.verify_pkcs1v15_sha256(&hash, &[0u8; 256]));
        // Leading zero octets in the JWK modulus do not change the signature length.
        let mut padded = alloc::vec![0u8; 2];
        padded.extend_from_slice(&n);
        let key = RsaVerifyingKey::new(&padded, &[1, 0, 1]).unwrap();
        assert!(!key.verify_pkcs1v15_sha256(&hash, &[0u8; 258]));
    }

    /// Signatures by the fixed test keys (1024 to 4096 bits, e = 65537 and e = 3) verify; any
    /// single-bit change to the signature, the signature plus n, or another digest do not.
    #[test]
    fn test_key_signatures_verify_and_tampering_fails() {
        use base64::Engine as _;
        use rsa::pkcs1v15::SigningKey;
        use rsa::pkcs8::DecodePrivateKey;
        use rsa::signature::{SignatureEncoding, Signer};
        use rsa::traits::PublicKeyParts;
        let pems = [
            include_str!("../../../tests/vectors/keys/rsa-1024.pem"),
            include_str!("../../../tests/vectors/keys/rsa-a.pem"),
            include_str!("../../../tests/vectors/keys/rsa-e3.pem"),
            include_str!("../../../tests/vectors/keys/rsa-3072.pem"),
            include_str!("../../../tests/vectors/keys/rsa-4096.pem"),
        ];
        for pem in pems {
            let body: alloc::string::String =
                pem.lines().filter(|l| !l.starts_with("-----")).collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap();
            let private = rsa::RsaPrivateKey::from_pkcs8_der(&der).unwrap();
            let n = private.n().to_bytes_be();
            let key = RsaVerifyingKey::new(&n, &private.e().to_bytes_be()).unwrap();
            let bits = key.bits();
            let signer = SigningKey::<sha2::Sha256>::new(private);
            let sig = signer.sign(b"message").to_vec();
            let hash = sha256(b"message");
            assert!(key.verify_pkcs1v15_sha256(&hash, &sig), "{bits}");
            assert!(!key.verify_pkcs1v15_sha256(&sha256(b"messagf"), &sig));
            for bit in [0usize, 7, 500, sig.len() * 8 - 1] {
                let mut bad = sig.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                assert!(!key.verify_pkcs1v15_sha256(&hash, &bad), "{bits} bit {bit}");
            }
            // s + n: the same residue, but not below n.
            let plus_n =
                (rsa::BigUint::from_bytes_be(&sig) + rsa::BigUint::from_bytes_be(&n)).to_bytes_be();
            if plus_n.len() == sig.len() {
                assert!(!key.verify_pkcs1v15_sha256(&hash, &plus_n));
            }
        }
    }

    /// A base64url member of a JWK, decoded.
    fn member(jwk: &tokengate_json::Value, name: &'static str) -> Vec<u8> {
        let text = jwk
            .get(name)
            .and_then(tokengate_json::Value::as_str)
            .unwrap();
        crate::token::decode_segment(text, name).unwrap()
    }

    /// Hex SHA-256 of `spki_der()` for every `kty` key of the TEST key set (P-256 only for EC).
    fn spki_digests(
        kty: &str,
        key: impl Fn(&tokengate_json::Value) -> PublicKey,
    ) -> Vec<alloc::string::String> {
        let doc = tokengate_json::parse(include_bytes!(
            "../../../tests/vectors/keys/jwks-public.json"
        ))
        .unwrap();
        let keys = doc
            .get("keys")
            .and_then(tokengate_json::Value::as_array)
            .unwrap();
        keys.iter()
            .filter(|jwk| jwk.get("kty").and_then(tokengate_json::Value::as_str) == Some(kty))
            .filter(|jwk| {
                kty != "EC"
                    || jwk.get("crv").and_then(tokengate_json::Value::as_str) == Some("P-256")
            })
            .map(|jwk| {
                let der = key(jwk).spki_der().unwrap();
                sha256(&der)
                    .iter()
                    .map(|b| alloc::format!("{b:02x}"))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn rsa_keys_encode_as_the_subject_public_key_info_openssl_writes() {
        // SHA-256 of `openssl pkey -in tests/vectors/keys/<name>.pem -pubout -outform DER`:
        // 1024, 2048 and 4096 bits (one-, two-octet lengths) and e = 3 (a one-octet exponent).
        let expected = [
            "6e5713b21b6af4ef815e93f269aa8a3dcd2f1c9df8598e58f7e8eff967632f60", // rsa-1024
            "c29910a891a88e1d9c10ddd8621cfb2588710cfde1b32a434a38d01e0a99e4f3", // rsa-a
            "2b3b8a85e2eb6d04c9fcb9da6245c7c77e1f251228d107e1a0450b8e31c8318d", // rsa-4096
            "e1e458b6b41366c3588d952d8be02de91d129697ca68792402eb647a392cbdd3", // rsa-e3
        ];
        let seen = spki_digests("RSA", |jwk| {
            PublicKey::Rsa(RsaVerifyingKey::new(&member(jwk, "n"), &member(jwk, "e")).unwrap())
        });
        for h in expected {
            assert!(seen.iter().any(|s| s == h), "no key encodes to {h}");
        }
    }

    #[test]
    fn p256_keys_encode_as_the_subject_public_key_info_openssl_writes() {
        // `openssl pkey -in tests/vectors/keys/ec-a.pem -pubout -outform DER | sha256sum`.
        let expected = "5f40f17533c2823a7dc11e0417ac75add863be6ff0c4a1d0fe7ef0716c621523";
        let seen = spki_digests("EC", |jwk| {
            let mut sec1 = alloc::vec![4u8];
            sec1.extend_from_slice(&member(jwk, "x"));
            sec1.extend_from_slice(&member(jwk, "y"));
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
            PublicKey::Ec(EcVerifyingKey::from(key))
        });
        assert!(seen.iter().any(|s| s == expected), "{seen:?}");
    }

    #[test]
    fn es256_signatures_go_to_a_host_as_canonical_der() {
        let mut sig = [0u8; 64];
        sig[31] = 1; // r = 1
        sig[32] = 0x80; // s with its top bit set: a leading zero octet
        let der = host_signature(Algorithm::Es256, &sig).unwrap();
        let mut want = alloc::vec![0x30, 3 + 35, 0x02, 0x01, 0x01, 0x02, 0x21, 0x00];
        want.extend_from_slice(&sig[32..]);
        assert_eq!(der, want);
        // r = 0 stays the INTEGER 0 (a host refuses it, as the core does).
        let zero = host_signature(Algorithm::Es256, &[0u8; 64]).unwrap();
        assert_eq!(zero, [0x30, 6, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]);
        assert_eq!(host_signature(Algorithm::Es256, &[1u8; 63]), None);
        assert_eq!(host_signature(Algorithm::Es256, &[1u8; 65]), None);
        assert_eq!(
            host_signature(Algorithm::Rs256, &[7u8; 256]).unwrap(),
            [7u8; 256]
        );
    }

    #[test]
    fn keys_a_host_may_refuse_get_no_encoding() {
        let n = [0xc5u8; 256];
        let big_e = RsaVerifyingKey::new(&n, &[1, 0, 0, 0, 1]).unwrap();
        assert_eq!(PublicKey::Rsa(big_e).spki_der(), None);
        let ok = RsaVerifyingKey::new(&n, &[0xff, 0xff, 0xff, 0xff]).unwrap();
        assert!(PublicKey::Rsa(ok).spki_der().is_some());
    }
}
