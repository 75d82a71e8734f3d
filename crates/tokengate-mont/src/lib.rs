//! Montgomery arithmetic for the RSA public operation: `s^e mod n` with a fixed modulus.
//!
//! One algorithm, two limb systems chosen per target:
//!
//! - [`Radix27`] (wasm32): 27-bit limbs in `u32`. Products are below 2^54 and a column of up to
//!   2·304 of them (8192-bit moduli) still fits a `u64`, so columns are summed with no carry
//!   handling at all. Under `simd128` the sums are `i64x2.extmul_{low,high}_i32x4_u`, four
//!   products per vector; without it, plain `i64.mul` (wasm has no 64×64→128 multiply).
//! - [`Radix64`] (64-bit hosts): saturated `u64` limbs, each column summed into a three-word
//!   accumulator (`u128` and a carry count).
//!
//! Both use product scanning with the reduction folded in column by column (FIPS), a dedicated
//! squaring (each cross product once, doubled), and `R = 2^(bits·limbs) > 4n`, so every
//! intermediate result stays below `2n` with no conditional subtraction until the very end.
//! The second operand of a product is kept reversed, so each column is a forward dot product
//! of two contiguous slices. Nothing here allocates per operation: the scratch is fixed-size
//! arrays on the stack, sized for [`MAX_BITS`].

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Nothing here may panic on any input: no unwrap/expect/panic and no indexing that can go out
// of bounds. Tests may.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

/// Largest modulus this arithmetic handles (the core refuses longer keys).
pub const MAX_BITS: usize = 8192;

/// One limb system: how limbs multiply and how a column is accumulated.
pub trait Limb: Copy + Default + Eq + Ord + core::fmt::Debug {
    /// Radix bits per limb.
    const BITS: u32;
    /// Dot products run over whole chunks of this many limbs (zero padding past the end).
    const CHUNK: usize;
    /// A column sum.
    type Acc: Copy;
    /// The zero sum.
    const ZERO: Self::Acc;
    /// Σ x[j]·y[j]; lengths equal and multiples of `CHUNK`.
    fn dot(x: &[Self], y: &[Self]) -> Self::Acc;
    /// Σ x[j]·y[j] + u[j]·v[j]; lengths equal and multiples of `CHUNK`.
    fn dot2(x: &[Self], y: &[Self], u: &[Self], v: &[Self]) -> Self::Acc;
    /// Σ x[j]·y[j] for any (equal) lengths.
    fn dot_any(x: &[Self], y: &[Self]) -> Self::Acc;
    /// `a·b` as a sum.
    fn mul(a: Self, b: Self) -> Self::Acc;
    /// `x + y`.
    fn add(x: Self::Acc, y: Self::Acc) -> Self::Acc;
    /// `2·x`.
    fn double(x: Self::Acc) -> Self::Acc;
    /// `x mod 2^BITS`.
    fn low(x: Self::Acc) -> Self;
    /// `x >> BITS`.
    fn shift(x: Self::Acc) -> Self::Acc;
    /// `a·b mod 2^BITS`.
    fn mul_low(a: Self, b: Self) -> Self;
    /// `-a^-1 mod 2^BITS` for odd `a`.
    fn neg_inv(a: Self) -> Self;
    /// `x - y - borrow` mod 2^BITS, and the borrow out.
    fn sub_borrow(x: Self, y: Self, borrow: bool) -> (Self, bool);
    /// `2·x + carry` mod 2^BITS, and the carry out.
    fn shl1(x: Self, carry: bool) -> (Self, bool);
    /// The low `BITS` bits of `x`.
    fn from_u128(x: u128) -> Self;
    /// The value.
    fn to_u128(self) -> u128;
    /// 1.
    const ONE: Self;
    /// Scratch for one value of the largest modulus, padding included.
    type Buf: AsMut<[Self]>;
    /// A zeroed scratch value.
    fn buf() -> Self::Buf;
}

/// 27-bit limbs in `u32`, columns summed in a `u64` (see the module documentation).
#[cfg(any(test, target_family = "wasm"))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Radix27(u32);

#[cfg(any(test, target_family = "wasm"))]
const MASK27: u32 = (1 << 27) - 1;
#[cfg(any(test, target_family = "wasm"))]
const CAP27: usize = (MAX_BITS + 2).div_ceil(27) + 4;

#[cfg(any(test, target_family = "wasm"))]
impl Limb for Radix27 {
    const BITS: u32 = 27;
    const CHUNK: usize = if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
        4
    } else {
        1
    };
    type Acc = u64;
    type Buf = [Radix27; CAP27];
    #[inline(always)]
    fn buf() -> Self::Buf {
        [Radix27(0); CAP27]
    }
    const ZERO: u64 = 0;
    const ONE: Self = Radix27(1);

    #[inline(always)]
    fn dot(x: &[Self], y: &[Self]) -> u64 {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        {
            simd::dot(x, y)
        }
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        {
            dot27(x, y)
        }
    }

    #[inline(always)]
    fn dot2(x: &[Self], y: &[Self], u: &[Self], v: &[Self]) -> u64 {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        {
            simd::dot2(x, y, u, v)
        }
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        {
            dot27(x, y) + dot27(u, v)
        }
    }

    #[inline(always)]
    fn dot_any(x: &[Self], y: &[Self]) -> u64 {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        {
            simd::dot_any(x, y)
        }
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        {
            dot27(x, y)
        }
    }

    #[inline(always)]
    fn mul(a: Self, b: Self) -> u64 {
        u64::from(a.0) * u64::from(b.0)
    }
    #[inline(always)]
    fn add(x: u64, y: u64) -> u64 {
        x + y
    }
    #[inline(always)]
    fn double(x: u64) -> u64 {
        2 * x
    }
    #[inline(always)]
    fn low(x: u64) -> Self {
        Radix27(x as u32 & MASK27)
    }
    #[inline(always)]
    fn shift(x: u64) -> u64 {
        x >> 27
    }
    #[inline(always)]
    fn mul_low(a: Self, b: Self) -> Self {
        Radix27(a.0.wrapping_mul(b.0) & MASK27)
    }
    fn neg_inv(a: Self) -> Self {
        let mut inv = a.0; // correct to 3 bits for odd a; each step doubles that
        for _ in 0..4 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(a.0.wrapping_mul(inv)));
        }
        Radix27(inv.wrapping_neg() & MASK27)
    }
    #[inline(always)]
    fn sub_borrow(x: Self, y: Self, borrow: bool) -> (Self, bool) {
        let d = x.0.wrapping_sub(y.0).wrapping_sub(u32::from(borrow));
        (Radix27(d & MASK27), d >> 31 != 0)
    }
    #[inline(always)]
    fn shl1(x: Self, carry: bool) -> (Self, bool) {
        let v = (x.0 << 1) | u32::from(carry);
        (Radix27(v & MASK27), v >> 27 != 0)
    }
    #[inline(always)]
    fn from_u128(x: u128) -> Self {
        Radix27(x as u32 & MASK27)
    }
    #[inline(always)]
    fn to_u128(self) -> u128 {
        u128::from(self.0)
    }
}

#[cfg(all(
    any(test, target_family = "wasm"),
    not(all(target_arch = "wasm32", target_feature = "simd128"))
))]
#[inline(always)]
fn dot27(x: &[Radix27], y: &[Radix27]) -> u64 {
    x.iter()
        .zip(y)
        .fold(0u64, |s, (a, b)| s + u64::from(a.0) * u64::from(b.0))
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use core::arch::wasm32::{
        u32x4_splat, u64x2, u64x2_add, u64x2_extmul_high_u32x4, u64x2_extmul_low_u32x4,
        u64x2_extract_lane, u64x2_splat, v128, v128_and,
    };

    use super::{Radix27, MASK27};

    /// Four limbs as one vector. Built from two 64-bit halves: at opt-level "s" (the npm
    /// build) LLVM makes that two 64-bit loads where four lanes would be four loads, and at 3
    /// one `v128.load`. The `and` with [`mask`] is a no-op on limbs (below 2^27) that keeps
    /// LLVM from splitting the load into two `v128.load32x2_u` feeding an `i64x2.mul` (eight
    /// instructions in V8); with it the products stay `i64x2.extmul_*_i32x4_u` (three).
    #[inline(always)]
    fn load(&[x0, x1, x2, x3]: &[Radix27; 4], mask: v128) -> v128 {
        let lo = u64::from(x0.0) | u64::from(x1.0) << 32;
        let hi = u64::from(x2.0) | u64::from(x3.0) << 32;
        v128_and(u64x2(lo, hi), mask)
    }

    /// The 27-bit lane mask for [`load`], made once per dot product. `black_box` makes it a
    /// value rather than a `v128.const` in the loop: the V8 in Envoy 1.40 builds a vector
    /// constant again at every use (a scalar load, `vmovq` and `vpunpcklqdq`, two more shuffles
    /// beside the four the products need), so each load cost four x86 instructions more and
    /// the inner loop ran 21 of them per four products; with the mask in a register, 15.
    /// Correctness does not depend on it: the `and` clears nothing either way.
    #[inline(always)]
    fn mask() -> v128 {
        u32x4_splat(core::hint::black_box(MASK27))
    }

    #[inline(always)]
    fn mac(acc: v128, p: v128, q: v128) -> v128 {
        u64x2_add(
            u64x2_add(acc, u64x2_extmul_low_u32x4(p, q)),
            u64x2_extmul_high_u32x4(p, q),
        )
    }

    #[inline(always)]
    fn sum(acc: v128) -> u64 {
        u64x2_extract_lane::<0>(acc) + u64x2_extract_lane::<1>(acc)
    }

    #[inline(always)]
    pub(super) fn dot(x: &[Radix27], y: &[Radix27]) -> u64 {
        let mut acc = u64x2_splat(0);
        let m = mask();
        for (p, q) in x.as_chunks::<4>().0.iter().zip(y.as_chunks::<4>().0) {
            acc = mac(acc, load(p, m), load(q, m));
        }
        sum(acc)
    }

    /// Σ x[j]·y[j] for any length: whole chunks, then a scalar tail of at most three.
    #[inline(always)]
    pub(super) fn dot_any(x: &[Radix27], y: &[Radix27]) -> u64 {
        let (xc, xr) = x.as_chunks::<4>();
        let (yc, yr) = y.as_chunks::<4>();
        let mut acc = u64x2_splat(0);
        let m = mask();
        for (p, q) in xc.iter().zip(yc) {
            acc = mac(acc, load(p, m), load(q, m));
        }
        let tail = xr
            .iter()
            .zip(yr)
            .fold(0u64, |s, (a, b)| s + u64::from(a.0) * u64::from(b.0));
        sum(acc) + tail
    }

    #[inline(always)]
    pub(super) fn dot2(x: &[Radix27], y: &[Radix27], u: &[Radix27], v: &[Radix27]) -> u64 {
        let mut acc = u64x2_splat(0);
        let m = mask();
        let xy = x.as_chunks::<4>().0.iter().zip(y.as_chunks::<4>().0);
        let uv = u.as_chunks::<4>().0.iter().zip(v.as_chunks::<4>().0);
        for ((p, q), (r, s)) in xy.zip(uv) {
            acc = mac(mac(acc, load(p, m), load(q, m)), load(r, m), load(s, m));
        }
        sum(acc)
    }
}

/// Saturated 64-bit limbs; a column sum is `lo + hi·2^128`.
#[cfg(any(test, not(target_family = "wasm")))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Radix64(u64);

#[cfg(any(test, not(target_family = "wasm")))]
const CAP64: usize = (MAX_BITS + 2).div_ceil(64) + 1;

/// A three-word column sum for [`Radix64`].
#[cfg(any(test, not(target_family = "wasm")))]
#[derive(Clone, Copy, Debug)]
pub struct Acc3 {
    lo: u128,
    hi: u64,
}

#[cfg(any(test, not(target_family = "wasm")))]
impl Limb for Radix64 {
    const BITS: u32 = 64;
    const CHUNK: usize = 1;
    type Acc = Acc3;
    type Buf = [Radix64; CAP64];
    #[inline(always)]
    fn buf() -> Self::Buf {
        [Radix64(0); CAP64]
    }
    const ZERO: Acc3 = Acc3 { lo: 0, hi: 0 };
    const ONE: Self = Radix64(1);

    #[inline(always)]
    fn dot(x: &[Self], y: &[Self]) -> Acc3 {
        x.iter()
            .zip(y)
            .fold(Self::ZERO, |s, (&a, &b)| Self::add(s, Self::mul(a, b)))
    }
    #[inline(always)]
    fn dot2(x: &[Self], y: &[Self], u: &[Self], v: &[Self]) -> Acc3 {
        Self::add(Self::dot(x, y), Self::dot(u, v))
    }
    #[inline(always)]
    fn dot_any(x: &[Self], y: &[Self]) -> Acc3 {
        Self::dot(x, y)
    }
    #[inline(always)]
    fn mul(a: Self, b: Self) -> Acc3 {
        Acc3 {
            lo: u128::from(a.0) * u128::from(b.0),
            hi: 0,
        }
    }
    #[inline(always)]
    fn add(x: Acc3, y: Acc3) -> Acc3 {
        let (lo, carry) = x.lo.overflowing_add(y.lo);
        Acc3 {
            lo,
            hi: x.hi + y.hi + u64::from(carry),
        }
    }
    #[inline(always)]
    fn double(x: Acc3) -> Acc3 {
        Acc3 {
            lo: x.lo << 1,
            hi: (x.hi << 1) | (x.lo >> 127) as u64,
        }
    }
    #[inline(always)]
    fn low(x: Acc3) -> Self {
        Radix64(x.lo as u64)
    }
    #[inline(always)]
    fn shift(x: Acc3) -> Acc3 {
        Acc3 {
            lo: (x.lo >> 64) | (u128::from(x.hi) << 64),
            hi: 0,
        }
    }
    #[inline(always)]
    fn mul_low(a: Self, b: Self) -> Self {
        Radix64(a.0.wrapping_mul(b.0))
    }
    fn neg_inv(a: Self) -> Self {
        let mut inv = a.0;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(a.0.wrapping_mul(inv)));
        }
        Radix64(inv.wrapping_neg())
    }
    #[inline(always)]
    fn sub_borrow(x: Self, y: Self, borrow: bool) -> (Self, bool) {
        let (d, b1) = x.0.overflowing_sub(y.0);
        let (d, b2) = d.overflowing_sub(u64::from(borrow));
        (Radix64(d), b1 || b2)
    }
    #[inline(always)]
    fn shl1(x: Self, carry: bool) -> (Self, bool) {
        ((Radix64((x.0 << 1) | u64::from(carry))), x.0 >> 63 != 0)
    }
    #[inline(always)]
    fn from_u128(x: u128) -> Self {
        Radix64(x as u64)
    }
    #[inline(always)]
    fn to_u128(self) -> u128 {
        u128::from(self.0)
    }
}

/// The limb system of the target this crate is built for: wasm has a 32×32→64 multiply (and,
/// with `simd128`, four of them per two instructions) but no 64×64→128 one (`u128` products
/// become compiler-rt calls), so 27-bit limbs there; saturated 64-bit limbs elsewhere.
#[cfg(target_family = "wasm")]
pub type TargetLimb = Radix27;
/// The limb system of the target this crate is built for: saturated 64-bit limbs (wasm builds
/// use 27-bit limbs).
#[cfg(not(target_family = "wasm"))]
pub type TargetLimb = Radix64;

/// A public RSA modulus in [`TargetLimb`]s, with non-generic methods.
///
/// Generic code is compiled in the crate that instantiates it, at that crate's optimisation
/// level; these methods instantiate [`Modulus`] here, so the exponentiation is always compiled
/// at this crate's level (the workspace keeps it at 3 while size-optimised builds take the
/// rest of a module to `"s"` or `"z"`).
#[derive(Clone, Debug)]
pub struct PublicModulus(Modulus<TargetLimb>);

impl PublicModulus {
    /// From big-endian octets: odd, at most [`MAX_BITS`] bits, above 1.
    #[inline(never)]
    pub fn new(n_be: &[u8]) -> Option<PublicModulus> {
        Modulus::new(n_be).map(PublicModulus)
    }

    /// `out = s^e mod n` as `out.len()` big-endian octets, for `s < n` given as big-endian
    /// octets (the caller checks `s < n`; higher octets of `s` than the modulus has are
    /// ignored). Nothing is allocated.
    #[inline(never)]
    pub fn pow_be(&self, s: &[u8], e: u64, out: &mut [u8]) {
        let l = self.0.limbs();
        let (mut s_limbs, mut m_limbs) = (TargetLimb::buf(), TargetLimb::buf());
        let (Some(s_limbs), Some(m_limbs)) =
            (s_limbs.as_mut().get_mut(..l), m_limbs.as_mut().get_mut(..l))
        else {
            return;
        };
        from_be(s, s_limbs);
        self.0.pow(s_limbs, e, m_limbs);
        to_be(m_limbs, out);
    }
}

/// A modulus with its Montgomery constants, kept per key.
#[derive(Clone, Debug)]
pub struct Modulus<L: Limb> {
    /// `n`, little-endian limbs.
    n: Vec<L>,
    /// `n` reversed, then `CHUNK` zero limbs.
    n_rev: Vec<L>,
    /// `n mod 2^BITS` and `-n^-1 mod 2^BITS`.
    n0: L,
    n0_inv: L,
    /// `R^2 mod n`, reversed, then `CHUNK` zero limbs.
    r2_rev: Vec<L>,
}

impl<L: Limb> Modulus<L> {
    /// From big-endian octets: odd, at most [`MAX_BITS`] bits, above 1.
    pub fn new(n_be: &[u8]) -> Option<Modulus<L>> {
        let first = n_be.iter().position(|&b| b != 0)?;
        let n_be = n_be.get(first..)?;
        let bits = n_be.len() * 8 - n_be.first()?.leading_zeros() as usize;
        if !(2..=MAX_BITS).contains(&bits) || n_be.last()? & 1 == 0 {
            return None;
        }
        // R = 2^(BITS·len) > 4n keeps Montgomery products below 2n without subtractions.
        let len = (bits + 2).div_ceil(L::BITS as usize);
        let mut n = vec![L::default(); len];
        from_be(n_be, &mut n);
        let n0 = *n.first()?;
        let n0_inv = L::neg_inv(n0);
        let pad = core::iter::repeat_n(L::default(), L::CHUNK);
        let n_rev = n.iter().rev().copied().chain(pad.clone()).collect();
        let r2_rev = r_squared(&n).into_iter().rev().chain(pad).collect();
        Some(Modulus {
            n,
            n_rev,
            n0,
            n0_inv,
            r2_rev,
        })
    }

    /// Limbs per value.
    pub fn limbs(&self) -> usize {
        self.n.len()
    }

    /// `s^e mod n` for `s < n` given as `limbs()` limbs. Writes `limbs()` limbs to `out`.
    pub fn pow(&self, s: &[L], e: u64, out: &mut [L]) {
        let l = self.n.len();
        let w = l + L::CHUNK;
        let [mut s_pad, mut s_rev, mut one_rev, mut base, mut base_rev, mut x, mut x_rev, mut y, mut y_rev, mut m] =
            [(); 10].map(|()| L::buf());
        let (
            Some(s_pad),
            Some(s_rev),
            Some(one_rev),
            Some(base),
            Some(base_rev),
            Some(mut cur),
            Some(mut cur_rev),
            Some(mut nxt),
            Some(mut nxt_rev),
            Some(m),
            Some(s),
            Some(out),
        ) = (
            s_pad.as_mut().get_mut(..w),
            s_rev.as_mut().get_mut(..w),
            one_rev.as_mut().get_mut(..w),
            base.as_mut().get_mut(..w),
            base_rev.as_mut().get_mut(..w),
            x.as_mut().get_mut(..w),
            x_rev.as_mut().get_mut(..w),
            y.as_mut().get_mut(..w),
            y_rev.as_mut().get_mut(..w),
            m.as_mut().get_mut(..w),
            s.get(..l),
            out.get_mut(..l),
        )
        else {
            return;
        };
        if e <= 1 {
            // s^1 = s; s^0 = 1 (n > 1).
            out.fill(L::default());
            match (e, out.first_mut()) {
                (1, _) => out.copy_from_slice(s),
                (_, Some(first)) => *first = L::ONE,
                _ => {}
            }
            return;
        }
        s_pad.iter_mut().zip(s).for_each(|(d, &v)| *d = v);
        s_rev
            .iter_mut()
            .zip(s.iter().rev())
            .for_each(|(d, &v)| *d = v);
        // base = s·R mod n (Montgomery form).
        self.mont_mul(s_pad, &self.r2_rev, m, base, base_rev);
        cur.copy_from_slice(base);
        cur_rev.copy_from_slice(base_rev);
        // Left to right from below the top bit; e ≥ 2, so there is at least one more bit.
        let top = 63 - e.leading_zeros();
        for bit in (1..top).rev() {
            self.mont_sqr(cur, cur_rev, m, nxt, nxt_rev);
            core::mem::swap(&mut cur, &mut nxt);
            core::mem::swap(&mut cur_rev, &mut nxt_rev);
            if (e >> bit) & 1 == 1 {
                self.mont_mul(cur, base_rev, m, nxt, nxt_rev);
                core::mem::swap(&mut cur, &mut nxt);
                core::mem::swap(&mut cur_rev, &mut nxt_rev);
            }
        }
        self.mont_sqr(cur, cur_rev, m, nxt, nxt_rev);
        core::mem::swap(&mut cur, &mut nxt);
        core::mem::swap(&mut cur_rev, &mut nxt_rev);
        // Bit 0: multiplying by the plain `s` (or by 1 when e is even) leaves Montgomery form.
        let last = if e & 1 == 1 {
            s_rev
        } else {
            if let Some(one) = one_rev.get_mut(l - 1) {
                *one = L::ONE;
            }
            one_rev
        };
        self.mont_mul(cur, last, m, nxt, nxt_rev);
        let Some(result) = nxt.get_mut(..l) else {
            return;
        };
        // Below 2n: one conditional subtraction.
        if !less_than(result, &self.n) {
            sub_in_place(result, &self.n);
        }
        out.copy_from_slice(result);
    }

    /// `out = a·b·R⁻¹ mod n`, given `b` reversed; inputs below 2n, output below 2n.
    /// Every slice has `limbs() + CHUNK` limbs, zero past `limbs()` (`m` excepted: scratch).
    #[inline(never)]
    fn mont_mul(&self, a: &[L], b_rev: &[L], m: &mut [L], out: &mut [L], out_rev: &mut [L]) {
        let l = self.n.len();
        let mut acc = L::ZERO;
        for i in 0..l {
            // Column i: a[j]·b[i-j] + m[j]·n[i-j] for j ≤ i, with m[i] = 0 until it is
            // chosen. Rounded up to whole chunks, the extra terms meet b_rev and n_rev past
            // the end (zero).
            let len = (i + 1).next_multiple_of(L::CHUNK);
            let start = l - 1 - i;
            if let Some(slot) = m.get_mut(i) {
                *slot = L::default();
            }
            let (Some(a_lo), Some(b_hi), Some(m_lo), Some(n_hi)) = (
                a.get(..len),
                b_rev.get(start..start + len),
                m.get(..len),
                self.n_rev.get(start..start + len),
            ) else {
                return;
            };
            acc = L::add(acc, L::dot2(a_lo, b_hi, m_lo, n_hi));
            acc = self.reduce_column(acc, i, m);
        }
        self.upper(acc, m, out, out_rev, |lo, len| {
            match (a.get(lo..lo + len), b_rev.get(..len)) {
                (Some(x), Some(y)) => L::dot(x, y),
                _ => L::ZERO,
            }
        });
    }

    /// Chooses `m[i]` so that column `i` of `acc` vanishes, and carries into column `i + 1`.
    #[inline(always)]
    fn reduce_column(&self, acc: L::Acc, i: usize, m: &mut [L]) -> L::Acc {
        let q = L::mul_low(L::low(acc), self.n0_inv);
        if let Some(slot) = m.get_mut(i) {
            *slot = q;
        }
        L::shift(L::add(acc, L::mul(q, self.n0)))
    }

    /// Columns `l..2l-1`: the product part given by `ab(start, len)` plus `m·n`; writes the
    /// result and its reverse. Windows start at `lo` and, rounded up to whole chunks, their
    /// extra terms meet `a` and `m` past `l` (zero).
    #[inline(always)]
    fn upper(
        &self,
        mut acc: L::Acc,
        m: &[L],
        out: &mut [L],
        out_rev: &mut [L],
        ab: impl Fn(usize, usize) -> L::Acc,
    ) {
        let l = self.n.len();
        let (Some(out), Some(out_rev)) = (out.get_mut(..l), out_rev.get_mut(..l)) else {
            return;
        };
        for (k, (o, o_rev)) in out.iter_mut().zip(out_rev.iter_mut().rev()).enumerate() {
            let lo = k + 1;
            if lo < l {
                let len = (l - lo).next_multiple_of(L::CHUNK);
                let (Some(m_hi), Some(n_lo)) = (m.get(lo..lo + len), self.n_rev.get(..len)) else {
                    return;
                };
                acc = L::add(L::add(acc, ab(lo, len)), L::dot(m_hi, n_lo));
                *o = L::low(acc);
                acc = L::shift(acc);
            } else {
                *o = L::low(acc);
            }
            *o_rev = *o;
        }
    }

    /// `out = a²·R⁻¹ mod n`, given `a` and `a` reversed.
    #[inline(never)]
    fn mont_sqr(&self, a: &[L], a_rev: &[L], m: &mut [L], out: &mut [L], out_rev: &mut [L]) {
        let l = self.n.len();
        let mut acc = L::ZERO;
        // Column i of a²: a[j]·a[i-j] for lo ≤ j < i-j, doubled, plus a[i/2]² when i is even.
        let square = |i: usize, lo: usize, a_rev_at: usize| -> L::Acc {
            let h = i.div_ceil(2) - lo;
            let cross = match (a.get(lo..lo + h), a_rev.get(a_rev_at..a_rev_at + h)) {
                (Some(x), Some(y)) => L::double(L::dot_any(x, y)),
                _ => L::ZERO,
            };
            match a.get(i / 2) {
                Some(&d) if i.is_multiple_of(2) => L::add(cross, L::mul(d, d)),
                _ => cross,
            }
        };
        for i in 0..l {
            let len = (i + 1).next_multiple_of(L::CHUNK);
            let start = l - 1 - i;
            if let Some(slot) = m.get_mut(i) {
                *slot = L::default();
            }
            let (Some(m_lo), Some(n_hi)) = (m.get(..len), self.n_rev.get(start..start + len))
            else {
                return;
            };
            acc = L::add(L::add(acc, square(i, 0, start)), L::dot(m_lo, n_hi));
            acc = self.reduce_column(acc, i, m);
        }
        self.upper(acc, m, out, out_rev, |lo, _| square(l + lo - 1, lo, 0));
    }
}

/// Big-endian octets into limbs (bits beyond `out` are dropped).
pub fn from_be<L: Limb>(bytes: &[u8], out: &mut [L]) {
    // A limb and a byte fit a u64 for 27-bit limbs: no u128 shifts (compiler-rt calls in wasm).
    if L::BITS <= 56 {
        from_be_in::<L, u64>(bytes, out);
    } else {
        from_be_in::<L, u128>(bytes, out);
    }
}

/// Limbs into big-endian octets (`out.len()` of them; higher bits dropped).
pub fn to_be<L: Limb>(limbs: &[L], out: &mut [u8]) {
    if L::BITS <= 56 {
        to_be_in::<L, u64>(limbs, out);
    } else {
        to_be_in::<L, u128>(limbs, out);
    }
}

/// The bit accumulator of [`from_be`] and [`to_be`]: wide enough for a limb and a byte.
trait Bits:
    Copy
    + From<u8>
    + core::ops::BitOr<Output = Self>
    + core::ops::Shl<u32, Output = Self>
    + core::ops::Shr<u32, Output = Self>
{
    const ZERO: Self;
    /// The low bits of a value of at most this many bits.
    fn from_wide(x: u128) -> Self;
    fn to_wide(self) -> u128;
    fn low_byte(self) -> u8;
}

impl Bits for u64 {
    const ZERO: u64 = 0;
    #[inline(always)]
    fn from_wide(x: u128) -> u64 {
        x as u64
    }
    #[inline(always)]
    fn to_wide(self) -> u128 {
        u128::from(self)
    }
    #[inline(always)]
    fn low_byte(self) -> u8 {
        self as u8
    }
}

impl Bits for u128 {
    const ZERO: u128 = 0;
    #[inline(always)]
    fn from_wide(x: u128) -> u128 {
        x
    }
    #[inline(always)]
    fn to_wide(self) -> u128 {
        self
    }
    #[inline(always)]
    fn low_byte(self) -> u8 {
        self as u8
    }
}

fn from_be_in<L: Limb, B: Bits>(bytes: &[u8], out: &mut [L]) {
    out.iter_mut().for_each(|x| *x = L::default());
    let mut acc = B::ZERO;
    let mut have = 0u32;
    let mut limbs = out.iter_mut();
    for &b in bytes.iter().rev() {
        acc = acc | B::from(b) << have;
        have += 8;
        if have >= L::BITS {
            if let Some(limb) = limbs.next() {
                *limb = L::from_u128(acc.to_wide());
            }
            acc = acc >> L::BITS;
            have -= L::BITS;
        }
    }
    if let Some(limb) = limbs.next() {
        *limb = L::from_u128(acc.to_wide());
    }
}

fn to_be_in<L: Limb, B: Bits>(limbs: &[L], out: &mut [u8]) {
    let mut acc = B::ZERO;
    let mut have = 0u32;
    let mut limbs = limbs.iter();
    for byte in out.iter_mut().rev() {
        if have < 8 {
            acc = acc | B::from_wide(limbs.next().map_or(0, |l| l.to_u128())) << have;
            have += L::BITS;
        }
        *byte = acc.low_byte();
        acc = acc >> 8;
        have -= 8;
    }
}

fn less_than<L: Limb>(a: &[L], b: &[L]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

/// `a -= b` for `a ≥ b`.
fn sub_in_place<L: Limb>(a: &mut [L], b: &[L]) {
    let mut borrow = false;
    for (x, &y) in a.iter_mut().zip(b) {
        (*x, borrow) = L::sub_borrow(*x, y, borrow);
    }
}

/// `R² mod n` by doubling, once per key.
fn r_squared<L: Limb>(n: &[L]) -> Vec<L> {
    let mut x = vec![L::default(); n.len()];
    if let Some(first) = x.first_mut() {
        *first = L::ONE; // 1 < n
    }
    for _ in 0..(2 * L::BITS as usize * n.len()) {
        let mut carry = false;
        for limb in x.iter_mut() {
            (*limb, carry) = L::shl1(*limb, carry);
        }
        // x < 2n < R, so no carry leaves the top limb.
        if carry || !less_than(&x, n) {
            sub_in_place(&mut x, n);
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rsa::BigUint;

    /// `s^e mod n` through `L`, big-endian octets of `n`'s length.
    fn pow<L: Limb>(n: &[u8], s: &[u8], e: u64) -> Vec<u8> {
        let modulus = Modulus::<L>::new(n).unwrap();
        let l = modulus.limbs();
        let (mut s_limbs, mut out) = (L::buf(), L::buf());
        from_be(s, &mut s_limbs.as_mut()[..l]);
        modulus.pow(&s_limbs.as_mut()[..l], e, out.as_mut());
        let mut be = vec![0u8; n.len()];
        to_be(&out.as_mut()[..l], &mut be);
        be
    }

    fn reference(n: &[u8], s: &[u8], e: u64) -> Vec<u8> {
        let r = BigUint::from_bytes_be(s).modpow(&BigUint::from(e), &BigUint::from_bytes_be(n));
        let r = r.to_bytes_be();
        let mut be = vec![0u8; n.len() - r.len()];
        be.extend_from_slice(&r);
        be
    }

    /// Both limb systems against num-bigint for `n`, `s` and `e`.
    fn check(n: &[u8], s: &[u8], e: u64) {
        let expect = reference(n, s, e);
        assert_eq!(pow::<Radix27>(n, s, e), expect, "radix 2^27, e = {e}");
        assert_eq!(pow::<Radix64>(n, s, e), expect, "radix 2^64, e = {e}");
    }

    /// An odd modulus of exactly `bits` bits from `seed` octets, and `s < n` from `s_seed`.
    fn operands(bits: usize, seed: &[u8], s_seed: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let len = bits.div_ceil(8);
        let mut n: Vec<u8> = seed.iter().cycle().take(len).copied().collect();
        let top_bits = bits - (len - 1) * 8;
        n[0] = (n[0] & ((1u16 << top_bits) - 1) as u8) | (1 << (top_bits - 1));
        n[len - 1] |= 1;
        let s =
            BigUint::from_bytes_be(&s_seed.iter().cycle().take(len).copied().collect::<Vec<_>>())
                % BigUint::from_bytes_be(&n);
        let s = s.to_bytes_be();
        let mut s_be = vec![0u8; len - s.len()];
        s_be.extend_from_slice(&s);
        (n, s_be)
    }

    #[test]
    fn edge_values_at_every_size_class() {
        for bits in [
            2usize, 3, 25, 26, 27, 28, 53, 54, 62, 63, 64, 65, 127, 128, 129, 1024, 2048,
        ] {
            for pattern in [0xFFu8, 0x80, 0x01] {
                let (n, _) = operands(bits, &[pattern], &[0]);
                let n_big = BigUint::from_bytes_be(&n);
                let len = n.len();
                let be = |v: &BigUint| {
                    let b = v.to_bytes_be();
                    let mut out = vec![0u8; len - b.len()];
                    out.extend_from_slice(&b);
                    out
                };
                let one = BigUint::from(1u8);
                for s in [BigUint::from(0u8), one.clone(), &n_big - &one, &n_big >> 1] {
                    let s = be(&(s % &n_big));
                    for e in [0u64, 1, 2, 3, 4, 65536, 65537, u64::MAX] {
                        check(&n, &s, e);
                    }
                }
            }
        }
    }

    /// The largest modulus with every limb at its maximum: the column sums at their bound
    /// (overflow checks are on in test builds).
    #[test]
    fn largest_modulus_with_all_ones() {
        let n = vec![0xFFu8; MAX_BITS / 8];
        let (_, s) = operands(MAX_BITS, &[0xFF], &[0xFF, 0xFE]);
        check(&n, &s, 65537);
        let s: Vec<u8> = n
            .iter()
            .enumerate()
            .map(|(i, _)| if i == n.len() - 1 { 0xFE } else { 0xFF })
            .collect();
        check(&n, &s, 3);
        assert!(Modulus::<Radix27>::new(&[0xFF; MAX_BITS / 8 + 1]).is_none());
        assert!(Modulus::<Radix64>::new(&[0xFF; MAX_BITS / 8 + 1]).is_none());
        assert!(Modulus::<Radix27>::new(&[0xFE; 256]).is_none());
        assert!(Modulus::<Radix64>::new(&[0, 0]).is_none());
    }

    #[test]
    fn octets_round_trip_through_limbs() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(517).collect();
        let mut l27 = [Radix27(0); 160];
        from_be(&bytes, &mut l27);
        let mut back = vec![0u8; bytes.len()];
        to_be(&l27, &mut back);
        assert_eq!(back, bytes);
        let mut l64 = [Radix64(0); 70];
        from_be(&bytes, &mut l64);
        to_be(&l64, &mut back);
        assert_eq!(back, bytes);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        /// Random moduli of any size up to 4096 bits, random `s < n`, e = 65537, 3 or any e.
        #[test]
        fn pow_matches_num_bigint(
            bits in 2usize..=4096,
            seed in proptest::collection::vec(any::<u8>(), 1..64),
            s_seed in proptest::collection::vec(any::<u8>(), 1..64),
            e in prop_oneof![Just(65537u64), Just(3u64), any::<u64>().prop_map(|e| e | 1), any::<u64>()],
        ) {
            let (n, s) = operands(bits, &seed, &s_seed);
            check(&n, &s, e);
        }
    }
}
