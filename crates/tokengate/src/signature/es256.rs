//! ES256 (ECDSA P-256 with SHA-256) verification with tables precomputed per key.
//!
//! A verification computes `u1·G + u2·Q` and compares its x-coordinate with `r`. RustCrypto's
//! `p256` does that with two constant-time 4-bit-window scalar multiplications (512 doublings).
//! Both points are fixed here — `G` always, `Q` for the key's lifetime — so each gets a
//! fixed-base comb (Lim–Lee): with `TEETH` teeth spaced `SPACING` bits apart, entry `i` of the
//! table is `Σ_t bit_t(i)·2^(t·SPACING)·P`, and the whole combination takes `SPACING` doublings
//! and at most `2·SPACING` additions, with table lookups instead of scalar arithmetic. The
//! scalars and points are public, so the variable-time lookups leak nothing secret. The point
//! and field arithmetic is `p256`'s (complete formulas, so table entries need no special cases).

use alloc::boxed::Box;

use p256::ecdsa::VerifyingKey;
use p256::elliptic_curve::group::Group;
use p256::elliptic_curve::ops::{Invert, Reduce};
use p256::elliptic_curve::point::AffineCoordinates;
use p256::{ProjectivePoint, Scalar, U256};

/// Comb teeth: 63 entries per table (6 KiB), 43 doublings per verification.
/// `SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (65 octets follow) }`.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

const TEETH: usize = 6;
const SPACING: usize = 256usize.div_ceil(TEETH);
const ENTRIES: usize = (1 << TEETH) - 1;

/// A P-256 public key with its comb tables, ready for repeated verification.
#[derive(Clone)]
pub struct EcVerifyingKey {
    key: VerifyingKey,
    /// Comb tables for `G` and `Q`: entry `i - 1` holds combination `i`.
    g: Box<[ProjectivePoint; ENTRIES]>,
    q: Box<[ProjectivePoint; ENTRIES]>,
}

impl core::fmt::Debug for EcVerifyingKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EcVerifyingKey")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl From<VerifyingKey> for EcVerifyingKey {
    fn from(key: VerifyingKey) -> EcVerifyingKey {
        EcVerifyingKey {
            g: comb(ProjectivePoint::GENERATOR),
            q: comb(ProjectivePoint::from(*key.as_affine())),
            key,
        }
    }
}

impl EcVerifyingKey {
    /// The `p256` key this was built from.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The key as a DER `SubjectPublicKeyInfo` (RFC 5480: `id-ecPublicKey`, `prime256v1`, the
    /// uncompressed point).
    pub(crate) fn spki_der(&self) -> alloc::vec::Vec<u8> {
        let point = self.key.to_encoded_point(false);
        let mut out = alloc::vec::Vec::with_capacity(P256_SPKI_PREFIX.len() + 65);
        out.extend_from_slice(&P256_SPKI_PREFIX);
        out.extend_from_slice(point.as_bytes());
        out
    }

    /// Verify a P1363 (`r || s`, 64 octets) signature over a SHA-256 digest. r or s equal to
    /// zero (CVE-2022-21449) or not below the group order are rejected.
    pub fn verify_prehash(&self, hash: &[u8; 32], sig: &[u8]) -> bool {
        if sig.len() != 64 {
            return false;
        }
        // Rejects r = 0, s = 0 and values ≥ n.
        let Ok(sig) = p256::ecdsa::Signature::from_slice(sig) else {
            return false;
        };
        let (r, s) = sig.split_scalars();
        let z = <Scalar as Reduce<U256>>::reduce_bytes(hash.into());
        let s_inv: Scalar = *s.invert_vartime();
        let u1 = z * s_inv;
        let u2 = *r * s_inv;
        let point = self.lincomb(&u1, &u2);
        if bool::from(point.is_identity()) {
            return false;
        }
        let x = point.to_affine().x();
        <Scalar as Reduce<U256>>::reduce_bytes(&x) == *r
    }

    /// `u1·G + u2·Q`, one shared doubling chain over both combs.
    fn lincomb(&self, u1: &Scalar, u2: &Scalar) -> ProjectivePoint {
        let k1 = words(u1);
        let k2 = words(u2);
        let mut acc = ProjectivePoint::IDENTITY;
        for column in (0..SPACING).rev() {
            acc = acc.double();
            if let Some(p) = entry(&self.g, &k1, column) {
                acc += p;
            }
            if let Some(p) = entry(&self.q, &k2, column) {
                acc += p;
            }
        }
        acc
    }
}

/// A scalar as little-endian 64-bit words.
fn words(k: &Scalar) -> [u64; 4] {
    let bytes: [u8; 32] = k.to_bytes().into();
    let mut out = [0u64; 4];
    for (word, chunk) in out.iter_mut().zip(bytes.rchunks_exact(8)) {
        let mut be = [0u8; 8];
        be.copy_from_slice(chunk);
        *word = u64::from_be_bytes(be);
    }
    out
}

/// The table entry for `column`: bits `column + t·SPACING` of `k` (none when all are zero).
#[inline(always)]
fn entry<'a>(
    table: &'a [ProjectivePoint; ENTRIES],
    k: &[u64; 4],
    column: usize,
) -> Option<&'a ProjectivePoint> {
    let mut index = 0usize;
    for t in 0..TEETH {
        let bit = column + t * SPACING;
        let b = k.get(bit / 64).map_or(0, |w| (w >> (bit % 64)) & 1);
        index |= (b as usize) << t;
    }
    table.get(index.checked_sub(1)?)
}

/// The comb table of `p`: entry `i - 1` is `Σ_t bit_t(i)·2^(t·SPACING)·p`.
fn comb(p: ProjectivePoint) -> Box<[ProjectivePoint; ENTRIES]> {
    let mut teeth = [ProjectivePoint::IDENTITY; TEETH];
    let mut cur = p;
    for tooth in teeth.iter_mut() {
        *tooth = cur;
        for _ in 0..SPACING {
            cur = cur.double();
        }
    }
    let mut table = Box::new([ProjectivePoint::IDENTITY; ENTRIES]);
    for i in 1..=ENTRIES {
        // Combination i = (i without its top bit) + the top bit's tooth.
        let top = (usize::BITS - 1 - i.leading_zeros()) as usize;
        let rest = i & !(1 << top);
        let tooth = teeth.get(top).copied().unwrap_or_default();
        let value = match rest.checked_sub(1).and_then(|r| table.get(r)) {
            Some(&lower) => lower + tooth,
            None => tooth,
        };
        if let Some(slot) = table.get_mut(i - 1) {
            *slot = value;
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
    use p256::ecdsa::SigningKey;
    use proptest::prelude::*;

    #[test]
    fn comb_entries_are_the_combinations() {
        let p = ProjectivePoint::GENERATOR.double();
        let table = comb(p);
        for i in [1usize, 2, 3, 5, 32, 33, 62, 63] {
            let mut k = Scalar::ZERO;
            for t in 0..TEETH {
                if i >> t & 1 == 1 {
                    let mut two_pow = Scalar::ONE;
                    for _ in 0..t * SPACING {
                        two_pow = two_pow.double();
                    }
                    k += two_pow;
                }
            }
            assert_eq!(table.get(i - 1).copied(), Some(p * k), "entry {i}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// The comb verification agrees with p256's own on valid signatures and on
        /// signatures for another digest, for random keys and digests.
        #[test]
        fn agrees_with_p256(secret in any::<[u8; 32]>(), hash in any::<[u8; 32]>(), flip in 0usize..256) {
            let Ok(sk) = SigningKey::from_slice(&secret) else { return Ok(()); };
            let key = EcVerifyingKey::from(*sk.verifying_key());
            let sig: p256::ecdsa::Signature = sk.sign_prehash(&hash).unwrap();
            prop_assert!(key.verify_prehash(&hash, &sig.to_bytes()));
            let mut other = hash;
            other[flip / 8] ^= 1 << (flip % 8);
            let theirs = sk.verifying_key().verify_prehash(&other, &sig).is_ok();
            prop_assert_eq!(key.verify_prehash(&other, &sig.to_bytes()), theirs);
            let mut bad = sig.to_bytes();
            bad[flip / 4] ^= 1 << (flip % 8);
            let theirs = p256::ecdsa::Signature::from_slice(&bad)
                .is_ok_and(|b| sk.verifying_key().verify_prehash(&hash, &b).is_ok());
            prop_assert_eq!(key.verify_prehash(&hash, &bad), theirs);
        }
    }
}
