//! A slab: values addressed by a stable index (the epoll token), freed slots reused.

/// A slab: entries addressed by index, freed slots reused.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    entries: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> Slab<T> {
    pub fn new() -> Self {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
        }
    }
    pub fn insert(&mut self, value: T) -> usize {
        match self.free.pop() {
            Some(index) => {
                if let Some(slot) = self.entries.get_mut(index) {
                    *slot = Some(value);
                }
                index
            }
            None => {
                self.entries.push(Some(value));
                self.entries.len() - 1
            }
        }
    }
    pub fn remove(&mut self, index: usize) -> Option<T> {
        let value = self.entries.get_mut(index)?.take();
        if value.is_some() {
            self.free.push(index);
        }
        value
    }
    pub fn get(&self, index: usize) -> Option<&T> {
        self.entries.get(index)?.as_ref()
    }
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        self.entries.get_mut(index)?.as_mut()
    }
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.entries.iter_mut().filter_map(Option::as_mut)
    }
    pub fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }
}
