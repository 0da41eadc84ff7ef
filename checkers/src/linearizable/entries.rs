//! The entry lists of the WGL search, as dancing links (Knuth, "Dancing Links", 2000): an operation is
//! lifted out of its list in O(1) when linearized and put back in O(1) when undone, in LIFO order.
//! Wing & Gong's and Lowe's algorithms walk exactly such a list of call and return entries.

use crate::linearizable::partition::OpRecord;

/// The entry lists. Entry `2i` is the call of operation `i`, `2i + 1` its return. Operations that
/// must take effect have both entries in the main chain, in real-time order; `info` and pending
/// operations have only a call, kept in a second chain ordered by call. Each chain has a head and a
/// tail sentinel.
pub(crate) struct Entries {
    pub(crate) next: Vec<u32>,
    pub(crate) prev: Vec<u32>,
    pub(crate) main_head: u32,
    pub(crate) main_tail: u32,
    pub(crate) info_head: u32,
    pub(crate) info_tail: u32,
}

impl Entries {
    pub(crate) fn new<O>(ops: &[OpRecord<O>]) -> Entries {
        let mut main: Vec<(u64, u32)> = Vec::with_capacity(ops.len() * 2);
        let mut info: Vec<(u64, u32)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let i = u32::try_from(i).expect("fewer than 2^31 operations in a partition");
            match op.ret {
                Some(ret) => {
                    main.push((op.call, 2 * i));
                    main.push((ret, 2 * i + 1));
                }
                None => info.push((op.call, 2 * i)),
            }
        }
        main.sort_unstable();
        info.sort_unstable();
        let n = 2 * ops.len() as u32;
        let mut e = Entries {
            next: vec![0; n as usize + 4],
            prev: vec![0; n as usize + 4],
            main_head: n,
            main_tail: n + 1,
            info_head: n + 2,
            info_tail: n + 3,
        };
        e.chain(e.main_head, e.main_tail, &main);
        e.chain(e.info_head, e.info_tail, &info);
        e
    }

    fn chain(&mut self, head: u32, tail: u32, order: &[(u64, u32)]) {
        let mut last = head;
        for &(_, e) in order {
            self.next[last as usize] = e;
            self.prev[e as usize] = last;
            last = e;
        }
        self.next[last as usize] = tail;
        self.prev[tail as usize] = last;
    }

    pub(crate) fn lift(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        self.prev[n as usize] = p;
    }

    pub(crate) fn unlift(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        self.prev[n as usize] = e;
    }

    /// The first return entry of the main chain: the operation that must be linearized soonest.
    pub(crate) fn first_return(&self) -> u32 {
        let mut e = self.next[self.main_head as usize];
        while e.is_multiple_of(2) {
            e = self.next[e as usize];
        }
        e
    }
}
