//! A list that holds at least one item: a job's inputs, the runs of an
//! outcome. A single run is a list of one, so one path serves one run and
//! a batch alike, and "ran, but no run" cannot be written down.

/// At least one `T`, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NonEmpty<T> {
    first: T,
    rest: Vec<T>,
}

impl<T> NonEmpty<T> {
    /// A list of one.
    pub(crate) fn one(first: T) -> NonEmpty<T> {
        NonEmpty {
            first,
            rest: Vec::new(),
        }
    }

    /// `items` as a non-empty list, or `None` when it has none.
    pub(crate) fn from_vec(items: Vec<T>) -> Option<NonEmpty<T>> {
        let mut items = items.into_iter();
        let first = items.next()?;
        Some(NonEmpty {
            first,
            rest: items.collect(),
        })
    }

    pub(crate) fn first(&self) -> &T {
        &self.first
    }

    pub(crate) fn len(&self) -> usize {
        1 + self.rest.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        std::iter::once(&self.first).chain(&self.rest)
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        std::iter::once(&mut self.first).chain(&mut self.rest)
    }

    /// The first item, and the rest.
    pub(crate) fn into_parts(self) -> (T, Vec<T>) {
        (self.first, self.rest)
    }
}

impl<T> std::ops::Index<usize> for NonEmpty<T> {
    type Output = T;

    /// The item at `index` (the first is 0); panics past the end, as a
    /// slice does.
    fn index(&self, index: usize) -> &T {
        match index {
            0 => &self.first,
            i => &self.rest[i - 1],
        }
    }
}

impl<T> IntoIterator for NonEmpty<T> {
    type Item = T;
    type IntoIter = std::iter::Chain<std::iter::Once<T>, std::vec::IntoIter<T>>;

    fn into_iter(self) -> Self::IntoIter {
        std::iter::once(self.first).chain(self.rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_keeps_its_order_and_is_never_empty() {
        assert_eq!(NonEmpty::<u8>::from_vec(Vec::new()), None);
        let list = NonEmpty::from_vec(vec![1, 2, 3]).unwrap();
        assert_eq!((list.len(), *list.first()), (3, 1));
        assert_eq!(list.iter().copied().collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(list.clone().into_iter().collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(list.into_parts(), (1, vec![2, 3]));
        assert_eq!(NonEmpty::one('a').len(), 1);
    }
}
