//! Running attempts by token: O(1) insert and remove, tokens that are never
//! mistaken for an earlier attempt's (each carries its slot's generation).

pub(crate) struct Slab<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    len: usize,
}

struct Entry<T> {
    generation: u32,
    value: Option<T>,
}

impl<T> Slab<T> {
    pub(crate) fn new() -> Slab<T> {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    pub(crate) fn insert(&mut self, value: T) -> u64 {
        self.len += 1;
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push(Entry {
                    generation: 0,
                    value: None,
                });
                (self.entries.len() - 1) as u32
            }
        };
        let e = &mut self.entries[i as usize];
        e.generation = e.generation.wrapping_add(1);
        e.value = Some(value);
        ((e.generation as u64) << 32) | i as u64
    }

    fn entry(&self, token: u64) -> Option<&Entry<T>> {
        let e = self.entries.get((token & 0xffff_ffff) as usize)?;
        (e.generation == (token >> 32) as u32 && e.value.is_some()).then_some(e)
    }

    pub(crate) fn get(&self, token: u64) -> Option<&T> {
        self.entry(token).and_then(|e| e.value.as_ref())
    }

    pub(crate) fn get_mut(&mut self, token: u64) -> Option<&mut T> {
        self.entry(token)?;
        self.entries[(token & 0xffff_ffff) as usize].value.as_mut()
    }

    pub(crate) fn remove(&mut self, token: u64) -> Option<T> {
        self.entry(token)?;
        let i = (token & 0xffff_ffff) as u32;
        self.len -= 1;
        self.free.push(i);
        self.entries[i as usize].value.take()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        self.entries.iter().enumerate().filter_map(|(i, e)| {
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
}
