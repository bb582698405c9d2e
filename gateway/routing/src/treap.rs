//! An order-statistic treap in one arena: many ordered sets ("lanes") share the node storage,
//! each known by its root. Keys are `(i64, u64)` (queue key, session id); every operation is
//! O(log n) expected, including `rank` (how many keys are smaller), which gives a buyer's
//! queue position without walking the queue. 32 bytes per entry.
//!
//! Node priorities come from a fixed-seed generator: the structure is deterministic.

pub(crate) const NIL: u32 = u32::MAX;

pub(crate) type Key = (i64, u64);

#[derive(Debug, Clone, Copy)]
struct Node {
    key: i64,
    id: u64,
    left: u32,
    right: u32,
    size: u32,
    prio: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Arena {
    nodes: Vec<Node>,
    free: Vec<u32>,
    seed: u64,
}

impl Default for Arena {
    fn default() -> Self {
        Arena { nodes: Vec::new(), free: Vec::new(), seed: 0x9E37_79B9_7F4A_7C15 }
    }
}

impl Arena {
    fn next_prio(&mut self) -> u32 {
        // xorshift64*
        let mut x = self.seed;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.seed = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }

    fn n(&self, t: u32) -> &Node {
        &self.nodes[t as usize]
    }

    fn n_mut(&mut self, t: u32) -> &mut Node {
        &mut self.nodes[t as usize]
    }

    fn key(&self, t: u32) -> Key {
        let n = self.n(t);
        (n.key, n.id)
    }

    /// Number of entries under `t`.
    pub(crate) fn size(&self, t: u32) -> u32 {
        if t == NIL { 0 } else { self.n(t).size }
    }

    fn update(&mut self, t: u32) {
        let (l, r) = (self.n(t).left, self.n(t).right);
        let size = 1 + self.size(l) + self.size(r);
        self.n_mut(t).size = size;
    }

    fn alloc(&mut self, key: Key) -> u32 {
        let prio = self.next_prio();
        let node = Node { key: key.0, id: key.1, left: NIL, right: NIL, size: 1, prio };
        match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        }
    }

    /// Splits `t` into keys `< k` and keys `>= k`.
    fn split(&mut self, t: u32, k: Key) -> (u32, u32) {
        if t == NIL {
            return (NIL, NIL);
        }
        if self.key(t) < k {
            let (l, r) = self.split(self.n(t).right, k);
            self.n_mut(t).right = l;
            self.update(t);
            (t, r)
        } else {
            let (l, r) = self.split(self.n(t).left, k);
            self.n_mut(t).left = r;
            self.update(t);
            (l, t)
        }
    }

    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.n(a).prio >= self.n(b).prio {
            let r = self.merge(self.n(a).right, b);
            self.n_mut(a).right = r;
            self.update(a);
            a
        } else {
            let l = self.merge(a, self.n(b).left);
            self.n_mut(b).left = l;
            self.update(b);
            b
        }
    }

    fn insert_node(&mut self, t: u32, node: u32) -> u32 {
        if t == NIL {
            return node;
        }
        if self.n(node).prio > self.n(t).prio {
            let (l, r) = self.split(t, self.key(node));
            let n = self.n_mut(node);
            n.left = l;
            n.right = r;
            self.update(node);
            return node;
        }
        if self.key(node) < self.key(t) {
            let l = self.insert_node(self.n(t).left, node);
            self.n_mut(t).left = l;
        } else {
            let r = self.insert_node(self.n(t).right, node);
            self.n_mut(t).right = r;
        }
        self.update(t);
        t
    }

    /// Inserts `key` into the set rooted at `root`; returns the new root. Keys must be unique
    /// (the caller's session ids are).
    pub(crate) fn insert(&mut self, root: u32, key: Key) -> u32 {
        let node = self.alloc(key);
        self.insert_node(root, node)
    }

    /// Removes `key`; returns the new root and whether it was there.
    pub(crate) fn remove(&mut self, root: u32, key: Key) -> (u32, bool) {
        if root == NIL {
            return (NIL, false);
        }
        match key.cmp(&self.key(root)) {
            std::cmp::Ordering::Equal => {
                let (l, r) = (self.n(root).left, self.n(root).right);
                let merged = self.merge(l, r);
                self.free.push(root);
                (merged, true)
            }
            std::cmp::Ordering::Less => {
                let (l, removed) = self.remove(self.n(root).left, key);
                self.n_mut(root).left = l;
                if removed {
                    self.update(root);
                }
                (root, removed)
            }
            std::cmp::Ordering::Greater => {
                let (r, removed) = self.remove(self.n(root).right, key);
                self.n_mut(root).right = r;
                if removed {
                    self.update(root);
                }
                (root, removed)
            }
        }
    }

    /// The smallest key.
    pub(crate) fn first(&self, root: u32) -> Option<Key> {
        let mut t = root;
        if t == NIL {
            return None;
        }
        while self.n(t).left != NIL {
            t = self.n(t).left;
        }
        Some(self.key(t))
    }

    /// How many keys are smaller than `key`.
    pub(crate) fn rank(&self, root: u32, key: Key) -> u32 {
        let mut t = root;
        let mut count = 0;
        while t != NIL {
            if self.key(t) < key {
                count += self.size(self.n(t).left) + 1;
                t = self.n(t).right;
            } else {
                t = self.n(t).left;
            }
        }
        count
    }

    /// Every key in order (for inspection and rebuilds; O(n)).
    pub(crate) fn keys(&self, root: u32) -> Vec<Key> {
        let mut out = Vec::with_capacity(self.size(root) as usize);
        let mut stack = Vec::new();
        let mut t = root;
        while t != NIL || !stack.is_empty() {
            while t != NIL {
                stack.push(t);
                t = self.n(t).left;
            }
            if let Some(top) = stack.pop() {
                out.push(self.key(top));
                t = self.n(top).right;
            }
        }
        out
    }

    /// Nodes in use.
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        self.nodes.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        #[test]
        fn behaves_like_a_btreeset(ops in proptest::collection::vec((any::<bool>(), -50i64..50, 0u64..20), 0..400)) {
            let mut arena = Arena::default();
            let mut root = NIL;
            let mut model = BTreeSet::new();
            for (insert, k, id) in ops {
                let key = (k, id);
                if insert && !model.contains(&key) {
                    root = arena.insert(root, key);
                    model.insert(key);
                } else {
                    let (r, removed) = arena.remove(root, key);
                    root = r;
                    prop_assert_eq!(removed, model.remove(&key));
                }
                prop_assert_eq!(arena.size(root) as usize, model.len());
                prop_assert_eq!(arena.first(root), model.iter().next().copied());
                let probe = (k, id);
                prop_assert_eq!(arena.rank(root, probe) as usize, model.range(..probe).count());
            }
            prop_assert_eq!(arena.keys(root), model.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(arena.live(), model.len());
        }
    }

    #[test]
    fn many_lanes_share_one_arena() {
        let mut arena = Arena::default();
        let (mut a, mut b) = (NIL, NIL);
        for i in 0..1000u64 {
            a = arena.insert(a, (i as i64, i));
            b = arena.insert(b, (-(i as i64), i));
        }
        assert_eq!(arena.first(a), Some((0, 0)));
        assert_eq!(arena.first(b), Some((-999, 999)));
        assert_eq!(arena.rank(a, (500, 0)), 500);
        for i in 0..1000u64 {
            a = arena.remove(a, (i as i64, i)).0;
        }
        assert_eq!(a, NIL);
        assert_eq!(arena.size(b), 1000);
    }
}
