//! RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 §3.3) and ES256 (ECDSA P-256 with SHA-256,
//! RFC 7518 §3.4) verification.
//!
//! RSA keys are parsed once into [`RsaVerifyingKey`], which keeps its Montgomery constants, so a
//! verification with e = 65537 costs 16 squarings and 2 multiplications of the modulus size.
//! rsa 0.9 recomputes those constants on every call; that is most of its verify time.

use alloc::vec;
use alloc::vec::Vec;

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256};

use crate::policy::Algorithm;

/// The DER prefix of `DigestInfo { sha256, NULL }` (RFC 8017 §9.2, note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

// Limb width: wasm32 has a native 32×32→64 multiply but no 64×64→128 one (u128 products
// become calls to a compiler-rt routine), so 32-bit limbs are several times faster there.
#[cfg(target_family = "wasm")]
type Limb = u32;
#[cfg(target_family = "wasm")]
type Wide = u64;
#[cfg(not(target_family = "wasm"))]
type Limb = u64;
#[cfg(not(target_family = "wasm"))]
type Wide = u128;
const LIMB_BITS: u32 = Limb::BITS;
const LIMB_BYTES: usize = (Limb::BITS / 8) as usize;

/// Largest RSA modulus accepted, to bound the work a hostile JWKS can ask for.
pub const MAX_RSA_BITS: usize = 8192;

/// A verifying key selected from a key set.
#[derive(Clone, Debug)]
pub enum PublicKey {
    /// An RSA public key, precomputed for Montgomery exponentiation.
    Rsa(RsaVerifyingKey),
    /// A P-256 public key (point validated on the curve).
    Ec(p256::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// Whether this key type can verify `alg`.
    pub fn fits(&self, alg: Algorithm) -> bool {
        matches!(
            (self, alg),
            (PublicKey::Rsa(_), Algorithm::Rs256) | (PublicKey::Ec(_), Algorithm::Es256)
        )
    }
}

/// Verifies signatures. The default [`PureRust`] backend is the only one the proxy filter uses;
/// a JS host may use its native crypto for the same decision through
/// [`crate::Verifier::begin`] and [`crate::Verifier::finish`].
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
pub fn verify_es256_prehash(key: &p256::ecdsa::VerifyingKey, hash: &[u8; 32], sig: &[u8]) -> bool {
    if sig.len() != 64 {
        return false;
    }
    match p256::ecdsa::Signature::from_slice(sig) {
        Ok(sig) => key.verify_prehash(hash, &sig).is_ok(),
        Err(_) => false,
    }
}

/// An RSA public key with its Montgomery constants, ready for repeated verification.
#[derive(Clone, Debug)]
pub struct RsaVerifyingKey {
    /// Modulus, little-endian 64-bit limbs.
    n: Vec<Limb>,
    /// `-n^-1 mod 2^LIMB_BITS`.
    n0_inv: Limb,
    /// `R^2 mod n` with `R = 2^(LIMB_BITS·limbs)`.
    r2: Vec<Limb>,
    /// Public exponent (odd, ≥ 3).
    e: u64,
    /// Modulus length in octets: the exact signature length (RFC 8017 §8.2.2 step 1).
    k: usize,
    bits: usize,
}

/// Why RSA parameters cannot make a verifying key.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum RsaKeyError {
    /// Modulus is even, zero, or longer than [`MAX_RSA_BITS`].
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
        let n = limbs_from_be(n_be, n_be.len().div_ceil(LIMB_BYTES));
        let n0 = n.first().copied().unwrap_or(1);
        // Newton iteration doubles the correct low bits each step: 1 → 64 in six steps.
        let mut inv: Limb = 1;
        for _ in 0..6 {
            inv = inv.wrapping_mul((2 as Limb).wrapping_sub(n0.wrapping_mul(inv)));
        }
        let r2 = r_squared(&n);
        Ok(RsaVerifyingKey {
            n0_inv: inv.wrapping_neg(),
            r2,
            e,
            k: n_be.len(),
            bits,
            n,
        })
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Verify an RSASSA-PKCS1-v1_5 signature whose encoded message must be exactly
    /// `00 01 FF…FF 00 || DigestInfo(SHA-256) || hash` (RFC 8017 §8.2.2, compared whole).
    pub fn verify_pkcs1v15_sha256(&self, hash: &[u8; 32], signature: &[u8]) -> bool {
        let t_len = SHA256_DIGEST_INFO.len() + hash.len();
        if signature.len() != self.k || self.k < t_len + 11 {
            return false;
        }
        let limbs = self.n.len();
        let s = limbs_from_be(signature, limbs);
        if !less_than(&s, &self.n) {
            return false;
        }
        let m = self.pow_e(&s);
        let em = limbs_to_be(&m, self.k);
        let ps_end = self.k - t_len - 1;
        em.first() == Some(&0)
            && em.get(1) == Some(&1)
            && em
                .get(2..ps_end)
                .is_some_and(|ps| ps.iter().all(|&b| b == 0xff))
            && em.get(ps_end) == Some(&0)
            && em.get(ps_end + 1..ps_end + 1 + SHA256_DIGEST_INFO.len())
                == Some(&SHA256_DIGEST_INFO[..])
            && em.get(self.k - hash.len()..) == Some(&hash[..])
    }

    /// `s^e mod n` by left-to-right square-and-multiply in Montgomery form. The exponent is
    /// public, so the data-dependent branch leaks nothing.
    fn pow_e(&self, s: &[Limb]) -> Vec<Limb> {
        let limbs = self.n.len();
        let mut scratch = vec![0 as Limb; limbs + 2];
        let mut base = vec![0 as Limb; limbs];
        self.mont_mul(s, &self.r2, &mut base, &mut scratch);
        let mut acc = base.clone();
        let mut tmp = vec![0 as Limb; limbs];
        let top = 63 - self.e.leading_zeros();
        for bit in (0..top).rev() {
            self.mont_mul(&acc, &acc, &mut tmp, &mut scratch);
            core::mem::swap(&mut acc, &mut tmp);
            if (self.e >> bit) & 1 == 1 {
                self.mont_mul(&acc, &base, &mut tmp, &mut scratch);
                core::mem::swap(&mut acc, &mut tmp);
            }
        }
        let mut one = vec![0 as Limb; limbs];
        if let Some(first) = one.first_mut() {
            *first = 1;
        }
        self.mont_mul(&acc, &one, &mut tmp, &mut scratch);
        tmp
    }

    /// `out = a·b·R⁻¹ mod n` (CIOS; inputs below n, output fully reduced).
    fn mont_mul(&self, a: &[Limb], b: &[Limb], out: &mut [Limb], t: &mut [Limb]) {
        let n = &self.n;
        let l = n.len();
        t.iter_mut().for_each(|x| *x = 0);
        for &bi in b.iter().take(l) {
            let mut carry: Limb = 0;
            for (tj, &aj) in t.iter_mut().zip(a.iter()).take(l) {
                let (lo, hi) = mac(*tj, aj, bi, carry);
                *tj = lo;
                carry = hi;
            }
            let (sum, over) = t[l].overflowing_add(carry);
            t[l] = sum;
            t[l + 1] = Limb::from(over);

            let m = t[0].wrapping_mul(self.n0_inv);
            let (_, mut carry) = mac(t[0], m, n[0], 0);
            for j in 1..l {
                let (lo, hi) = mac(t[j], m, n[j], carry);
                t[j - 1] = lo;
                carry = hi;
            }
            let (sum, over) = t[l].overflowing_add(carry);
            t[l - 1] = sum;
            t[l] = t[l + 1] + Limb::from(over);
            t[l + 1] = 0;
        }
        out.copy_from_slice(&t[..l]);
        if t[l] != 0 || !less_than(out, n) {
            sub_in_place(out, n);
        }
    }
}

/// Hash `message` with SHA-256 (used by hosts that run the signature step themselves).
pub fn sha256(message: &[u8]) -> [u8; 32] {
    Sha256::digest(message).into()
}

#[inline(always)]
fn mac(acc: Limb, a: Limb, b: Limb, carry: Limb) -> (Limb, Limb) {
    let wide = Wide::from(acc) + Wide::from(a) * Wide::from(b) + Wide::from(carry);
    (wide as Limb, (wide >> LIMB_BITS) as Limb)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or(&[])
}

/// Big-endian octets into `limbs` little-endian limbs (the caller guarantees they fit or has
/// already bounded the length; excess high octets are dropped and then caught by `less_than`).
fn limbs_from_be(bytes: &[u8], limbs: usize) -> Vec<Limb> {
    let mut out = vec![0 as Limb; limbs];
    for (i, &b) in bytes.iter().rev().enumerate() {
        if let Some(limb) = out.get_mut(i / LIMB_BYTES) {
            *limb |= Limb::from(b) << (8 * (i % LIMB_BYTES));
        } else if b != 0 {
            // A value wider than the modulus: make it compare as too large.
            out.iter_mut().for_each(|x| *x = Limb::MAX);
            break;
        }
    }
    out
}

fn limbs_to_be(limbs: &[Limb], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    for (i, byte) in out.iter_mut().rev().enumerate() {
        if let Some(limb) = limbs.get(i / LIMB_BYTES) {
            *byte = (limb >> (8 * (i % LIMB_BYTES))) as u8;
        }
    }
    out
}

fn less_than(a: &[Limb], b: &[Limb]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

fn sub_in_place(a: &mut [Limb], b: &[Limb]) {
    let mut borrow = false;
    for (x, &y) in a.iter_mut().zip(b.iter()) {
        let (d1, b1) = x.overflowing_sub(y);
        let (d2, b2) = d1.overflowing_sub(Limb::from(borrow));
        *x = d2;
        borrow = b1 || b2;
    }
}

/// `2^(2·LIMB_BITS·limbs) mod n` by doubling: done once per key, so simplicity beats speed.
fn r_squared(n: &[Limb]) -> Vec<Limb> {
    let limbs = n.len();
    let mut x = vec![0 as Limb; limbs];
    if let Some(first) = x.first_mut() {
        *first = 1;
    }
    if !less_than(&x, n) {
        sub_in_place(&mut x, n);
    }
    for _ in 0..(2 * LIMB_BITS as usize * limbs) {
        let mut carry: Limb = 0;
        for limb in x.iter_mut() {
            let next = *limb >> (LIMB_BITS - 1);
            *limb = (*limb << 1) | carry;
            carry = next;
        }
        if carry != 0 || !less_than(&x, n) {
            sub_in_place(&mut x, n);
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_modulus_arithmetic_matches_naive_pow() {
        // n = 0xF123456789ABCDEF_0123456789ABCDEF (odd, two limbs), e = 65537.
        let n_be: Vec<u8> = [
            0xF1u8, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB,
            0xCD, 0xEF,
        ]
        .to_vec();
        let key = RsaVerifyingKey::new(&n_be, &[1, 0, 1]).unwrap();
        let n = u128::from_be_bytes(n_be.clone().try_into().unwrap());
        for s in [2u128, 3, 0x1234_5678_9abc_def0_1122_3344_5566_7788, n - 1] {
            let mut expect: u128 = 1;
            let mut base = s % n;
            let mut e = 65537u32;
            while e > 0 {
                if e & 1 == 1 {
                    expect = mulmod(expect, base, n);
                }
                base = mulmod(base, base, n);
                e >>= 1;
            }
            let got = key.pow_e(&limbs_from_be(&s.to_be_bytes(), 16 / LIMB_BYTES));
            assert_eq!(
                limbs_to_be(&got, 16),
                expect.to_be_bytes().to_vec(),
                "s = {s:#x}"
            );
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
        assert!(RsaVerifyingKey::new(&[0xFFu8; 1025], &[3]).is_err());
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
    }
}
