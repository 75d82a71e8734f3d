//! Maps and sets keyed by strings, kept as one vector sorted by key (byte order, as `String`'s
//! `Ord`) and searched by bisection. They replace `BTreeMap<String, _>` / `BTreeSet<String>`:
//! the same iteration order and lookups, a fraction of the code in the .wasm (a B-tree is
//! monomorphised per value type into a dozen functions; this is a vector and a search).
//!
//! Building from many unsorted entries goes through [`SortedMap::from_entries`] (a stable sort,
//! O(n log n)); [`SortedMap::insert`] shifts the tail and is for the small maps built one
//! member at a time.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// A map from strings to `V`, sorted by key, each key once.
#[derive(Clone, PartialEq)]
pub struct SortedMap<V> {
    entries: Vec<(String, V)>,
}

impl<V> Default for SortedMap<V> {
    fn default() -> Self {
        SortedMap::new()
    }
}

impl<V: fmt::Debug> fmt::Debug for SortedMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V> SortedMap<V> {
    /// An empty map.
    pub const fn new() -> SortedMap<V> {
        SortedMap {
            entries: Vec::new(),
        }
    }

    /// An empty map with room for `n` keys.
    pub fn with_capacity(n: usize) -> SortedMap<V> {
        SortedMap {
            entries: Vec::with_capacity(n),
        }
    }

    /// The map of `entries` in any order: entries with the same key are combined in their
    /// order in `entries`, `merge(kept, later)` folding each later one into the kept one.
    pub fn from_entries(entries: Vec<(String, V)>, mut merge: impl FnMut(&mut V, V)) -> Self {
        let Some(order) = stable_order(entries.iter().map(|(k, _)| k.as_str()).collect()) else {
            return SortedMap { entries };
        };
        let mut slots: Vec<Option<(String, V)>> = entries.into_iter().map(Some).collect();
        let mut out: Vec<(String, V)> = Vec::with_capacity(slots.len());
        for i in order {
            let Some((k, v)) = slots.get_mut(i).and_then(Option::take) else {
                continue;
            };
            match out.last_mut() {
                Some((last, kept)) if *last == k => merge(kept, v),
                _ => out.push((k, v)),
            }
        }
        SortedMap { entries: out }
    }

    /// [`SortedMap::from_entries`] where a later entry replaces an earlier one with its key (as
    /// inserting them one by one into a map does).
    pub fn from_entries_last_wins(entries: Vec<(String, V)>) -> Self {
        SortedMap::from_entries(entries, |kept, later| *kept = later)
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        bisect(self.entries.len(), key, &|i| {
            self.entries.get(i).map_or("", |(k, _)| k.as_str())
        })
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        let i = self.find(key).ok()?;
        self.entries.get(i).map(|(_, v)| v)
    }

    /// The value under `key`, mutable.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let i = self.find(key).ok()?;
        self.entries.get_mut(i).map(|(_, v)| v)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Set `key` to `value`; the value it had.
    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => self
                .entries
                .get_mut(i)
                .map(|(_, v)| core::mem::replace(v, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Remove `key`; the value it had.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        let i = self.find(key).ok()?;
        Some(self.entries.remove(i).1)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in key order.
    pub fn iter(&self) -> Iter<'_, V> {
        Iter(self.entries.iter())
    }

    /// The keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The entries in key order, as a slice.
    pub fn as_slice(&self) -> &[(String, V)] {
        &self.entries
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.entries.capacity()
    }
}

/// The entries of a [`SortedMap`], in key order.
#[derive(Clone, Debug)]
pub struct Iter<'a, V>(core::slice::Iter<'a, (String, V)>);

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (&'a String, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<V> DoubleEndedIterator for Iter<'_, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl<V> ExactSizeIterator for Iter<'_, V> {}

impl<'a, V> IntoIterator for &'a SortedMap<V> {
    type Item = (&'a String, &'a V);
    type IntoIter = Iter<'a, V>;

    fn into_iter(self) -> Iter<'a, V> {
        self.iter()
    }
}

impl<V> IntoIterator for SortedMap<V> {
    type Item = (String, V);
    type IntoIter = alloc::vec::IntoIter<(String, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<V> FromIterator<(String, V)> for SortedMap<V> {
    /// Later entries replace earlier ones with the same key.
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        SortedMap::from_entries_last_wins(iter.into_iter().collect())
    }
}

/// A set of strings, sorted, each once.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SortedSet {
    items: Vec<String>,
}

impl fmt::Debug for SortedSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.items.iter()).finish()
    }
}

impl SortedSet {
    /// An empty set.
    pub const fn new() -> SortedSet {
        SortedSet { items: Vec::new() }
    }

    /// Whether `item` is in the set.
    pub fn contains(&self, item: &str) -> bool {
        self.find(item).is_ok()
    }

    fn find(&self, item: &str) -> Result<usize, usize> {
        bisect(self.items.len(), item, &|i| {
            self.items.get(i).map_or("", String::as_str)
        })
    }

    /// Add `item`; whether it was new.
    pub fn insert(&mut self, item: String) -> bool {
        match self.find(&item) {
            Ok(_) => false,
            Err(i) => {
                self.items.insert(i, item);
                true
            }
        }
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The items in order.
    pub fn iter(&self) -> core::slice::Iter<'_, String> {
        self.items.iter()
    }

    /// The items in order, as a slice.
    pub fn as_slice(&self) -> &[String] {
        &self.items
    }
}

impl Extend<String> for SortedSet {
    /// Adds every item (in O(n log n) overall: the items are sorted once, not inserted one by
    /// one).
    fn extend<I: IntoIterator<Item = String>>(&mut self, iter: I) {
        let mut items = core::mem::take(&mut self.items);
        items.extend(iter);
        let entries = items.into_iter().map(|s| (s, ())).collect();
        self.items = SortedMap::from_entries(entries, |_, _| {})
            .into_iter()
            .map(|(s, ())| s)
            .collect();
    }
}

impl FromIterator<String> for SortedSet {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Self {
        let mut set = SortedSet::new();
        set.extend(iter);
        set
    }
}

impl<'a> IntoIterator for &'a SortedSet {
    type Item = &'a String;
    type IntoIter = core::slice::Iter<'a, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

/// Where `key` is among the `len` sorted keys `key_at(0..len)` (`slice::binary_search`'s
/// answer), in one copy of the code for every map type.
fn bisect<'a>(len: usize, key: &str, key_at: &dyn Fn(usize) -> &'a str) -> Result<usize, usize> {
    let (mut low, mut high) = (0, len);
    while low < high {
        let mid = low + (high - low) / 2;
        match key_at(mid).cmp(key) {
            core::cmp::Ordering::Less => low = mid + 1,
            core::cmp::Ordering::Greater => high = mid,
            core::cmp::Ordering::Equal => return Ok(mid),
        }
    }
    Err(low)
}

/// The indices of `keys` in key order, equal keys in their original order (a stable sort,
/// O(n log n)), or `None` when they already are in strictly increasing order. One copy of the
/// code serves every map type. Runs of [`RUN`] indices are sorted by insertion (a token's
/// payload, a dozen members, never goes further), then neighbouring runs are merged through one
/// scratch vector: two allocations in all.
fn stable_order(keys: Vec<&str>) -> Option<Vec<usize>> {
    if keys.windows(2).all(|w| matches!(w, [a, b] if a < b)) {
        return None;
    }
    let key = |i: usize| keys.get(i).copied().unwrap_or("");
    let n = keys.len();
    let mut from: Vec<usize> = (0..n).collect();
    for run in from.chunks_mut(RUN) {
        for i in 1..run.len() {
            // Moves left only past strictly greater keys: equal keys keep their order.
            let mut j = i;
            while let (Some(&a), Some(&b)) = (run.get(j.wrapping_sub(1)), run.get(j)) {
                if key(a) <= key(b) {
                    break;
                }
                run.swap(j - 1, j);
                j -= 1;
            }
        }
    }
    let mut to = Vec::with_capacity(n);
    let mut width = RUN;
    while width < n {
        to.clear();
        for pair in from.chunks(width.saturating_mul(2)) {
            let (left, right) = pair.split_at(width.min(pair.len()));
            let (mut l, mut r) = (left.iter().peekable(), right.iter().peekable());
            while let (Some(&&a), Some(&&b)) = (l.peek(), r.peek()) {
                // The left run's entry first on a tie: stable.
                if key(b) < key(a) {
                    to.push(b);
                    r.next();
                } else {
                    to.push(a);
                    l.next();
                }
            }
            to.extend(l);
            to.extend(r);
        }
        core::mem::swap(&mut from, &mut to);
        width = width.saturating_mul(2);
    }
    Some(from)
}

/// Entries [`stable_order`] sorts by insertion before it starts merging.
const RUN: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::{BTreeMap, BTreeSet};
    use alloc::format;

    fn s(x: &str) -> String {
        String::from(x)
    }

    #[test]
    fn later_entries_replace_earlier_ones_as_in_a_btree_map() {
        let entries = alloc::vec![
            (s("b"), 1),
            (s("a"), 2),
            (s("b"), 3),
            (s("c"), 4),
            (s("a"), 5)
        ];
        let map = SortedMap::from_entries_last_wins(entries.clone());
        let btree: BTreeMap<String, i32> = entries.into_iter().collect();
        assert_eq!(
            map.iter().map(|(k, v)| (k.clone(), *v)).collect::<Vec<_>>(),
            btree.into_iter().collect::<Vec<_>>()
        );
        assert_eq!(map.get("a"), Some(&5));
        assert_eq!(map.get("z"), None);
        assert_eq!(format!("{map:?}"), r#"{"a": 5, "b": 3, "c": 4}"#);
    }

    #[test]
    fn merge_folds_duplicates_in_order() {
        let entries = alloc::vec![(s("x"), 1), (s("y"), 10), (s("x"), 2), (s("x"), 3)];
        let map = SortedMap::from_entries(entries, |kept, later| *kept = *kept * 10 + later);
        assert_eq!(map.get("x"), Some(&123));
        assert_eq!(map.get("y"), Some(&10));
    }

    #[test]
    fn insert_and_remove_keep_the_order() {
        let mut map = SortedMap::new();
        for (i, k) in ["m", "c", "x", "a", "c"].iter().enumerate() {
            map.insert(s(k), i);
        }
        assert_eq!(
            map.keys().map(String::as_str).collect::<Vec<_>>(),
            ["a", "c", "m", "x"]
        );
        assert_eq!(map.get("c"), Some(&4));
        assert_eq!(map.remove("c"), Some(4));
        assert_eq!(map.remove("c"), None);
        assert_eq!(map.len(), 3);
    }

    #[test]
    fn sets_match_btree_sets() {
        let items = ["b", "é", "a", "", "b", "Z", "a\u{0}"];
        let set: SortedSet = items.iter().map(|x| s(x)).collect();
        let btree: BTreeSet<String> = items.iter().map(|x| s(x)).collect();
        assert!(set.iter().eq(btree.iter()));
        assert!(set.contains("é") && !set.contains("c"));
        let mut grown = set.clone();
        grown.extend([s("c"), s("a")]);
        assert_eq!(grown.len(), set.len() + 1);
    }

    proptest::proptest! {
        #[test]
        fn from_entries_is_a_btree_map(
            entries in proptest::collection::vec(("[a-d]{0,3}", 0u32..100), 0..200),
            probes in proptest::collection::vec("[a-e]{0,4}", 0..20),
        ) {
            let map = SortedMap::from_entries_last_wins(entries.clone());
            let set: SortedSet = entries.iter().map(|(k, _)| k.clone()).collect();
            let btree: BTreeMap<String, u32> = entries.into_iter().collect();
            proptest::prop_assert!(map.iter().map(|(k, v)| (k.clone(), *v)).eq(btree.clone()));
            proptest::prop_assert!(set.iter().eq(btree.keys()));
            for p in probes.iter().chain(btree.keys()) {
                proptest::prop_assert_eq!(map.get(p), btree.get(p));
                proptest::prop_assert_eq!(set.contains(p), btree.contains_key(p));
            }
        }
    }
}
