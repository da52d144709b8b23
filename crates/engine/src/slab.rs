//! Running attempts by token: O(1) insert and remove, tokens that are never
//! mistaken for an earlier attempt's (each carries its slot's generation),
//! slots in chunks that growing never copies.

pub(crate) struct Slab<T> {
    /// Slots in chunks of [`CHUNK`]: growing never moves (nor copies) the
    /// slots already there, and holds at most one chunk more than in use.
    chunks: Vec<Vec<Entry<T>>>,
    /// Slots made so far, over every chunk.
    slots: usize,
    free: Vec<u32>,
    len: usize,
}

/// Slots per chunk.
const CHUNK: usize = 1024;

struct Entry<T> {
    generation: u32,
    value: Option<T>,
}

impl<T> Slab<T> {
    pub(crate) fn new() -> Slab<T> {
        Slab {
            chunks: Vec::new(),
            slots: 0,
            free: Vec::new(),
            len: 0,
        }
    }

    fn slot(&self, i: u32) -> Option<&Entry<T>> {
        let i = i as usize;
        self.chunks.get(i / CHUNK).and_then(|c| c.get(i % CHUNK))
    }

    fn slot_mut(&mut self, i: u32) -> &mut Entry<T> {
        let i = i as usize;
        &mut self.chunks[i / CHUNK][i % CHUNK]
    }

    pub(crate) fn insert(&mut self, value: T) -> u64 {
        self.len += 1;
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                if self.slots % CHUNK == 0 {
                    self.chunks.push(Vec::with_capacity(CHUNK));
                }
                let chunk = self.chunks.last_mut().expect("a chunk");
                chunk.push(Entry {
                    generation: 0,
                    value: None,
                });
                self.slots += 1;
                (self.slots - 1) as u32
            }
        };
        let e = self.slot_mut(i);
        e.generation = e.generation.wrapping_add(1);
        e.value = Some(value);
        ((e.generation as u64) << 32) | i as u64
    }

    fn entry(&self, token: u64) -> Option<&Entry<T>> {
        let e = self.slot((token & 0xffff_ffff) as u32)?;
        (e.generation == (token >> 32) as u32 && e.value.is_some()).then_some(e)
    }

    pub(crate) fn get(&self, token: u64) -> Option<&T> {
        self.entry(token).and_then(|e| e.value.as_ref())
    }

    pub(crate) fn get_mut(&mut self, token: u64) -> Option<&mut T> {
        self.entry(token)?;
        self.slot_mut((token & 0xffff_ffff) as u32).value.as_mut()
    }

    pub(crate) fn remove(&mut self, token: u64) -> Option<T> {
        self.entry(token)?;
        let i = (token & 0xffff_ffff) as u32;
        self.len -= 1;
        self.free.push(i);
        self.slot_mut(i).value.take()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        let slots = self.chunks.iter().flatten();
        slots.enumerate().filter_map(|(i, e)| {
            e.value
                .as_ref()
                .map(|v| (((e.generation as u64) << 32) | i as u64, v))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_slot_does_not_answer_to_an_old_token() {
        let mut s = Slab::new();
        let a = s.insert("a");
        assert_eq!(s.remove(a), Some("a"));
        let b = s.insert("b");
        assert_eq!(a & 0xffff_ffff, b & 0xffff_ffff, "the slot is reused");
        assert_eq!(s.get(a), None);
        assert_eq!(s.remove(a), None);
        assert_eq!(s.get(b), Some(&"b"));
        assert_eq!(s.len(), 1);
        assert_eq!(
            s.iter().map(|(t, v)| (t, *v)).collect::<Vec<_>>(),
            vec![(b, "b")]
        );
    }

    #[test]
    fn slots_past_the_first_chunk_keep_their_values_and_tokens() {
        let mut s = Slab::new();
        let tokens: Vec<u64> = (0..3 * CHUNK + 5).map(|i| s.insert(i)).collect();
        for (i, t) in tokens.iter().enumerate() {
            assert_eq!(s.get(*t), Some(&i));
        }
        assert_eq!(s.remove(tokens[2 * CHUNK + 1]), Some(2 * CHUNK + 1));
        let again = s.insert(7);
        assert_eq!(again & 0xffff_ffff, tokens[2 * CHUNK + 1] & 0xffff_ffff);
        assert_eq!(s.get(tokens[2 * CHUNK + 1]), None);
        let listed: Vec<(u64, usize)> = s.iter().map(|(t, v)| (t, *v)).collect();
        assert_eq!(listed.len(), 3 * CHUNK + 5);
        assert!(listed.contains(&(again, 7)));
        assert!(listed.contains(&(tokens[3 * CHUNK + 4], 3 * CHUNK + 4)));
    }
}
