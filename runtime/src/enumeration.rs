use std::fmt::Debug;
use std::hash::Hash;

/// A generated protobuf enum.
///
/// Generated enums are open: they wrap an `i32`, name the declared values as associated
/// constants, and keep any other number they decode so that it survives a round trip.
pub trait Enumeration:
    Copy + Eq + Hash + Ord + Default + Debug + From<i32> + Into<i32> + Send + Sync + 'static
{
    /// The enum's fully qualified protobuf name.
    const FULL_NAME: &'static str;

    /// The `.proto` name and number of every declared value except aliases, in ascending order
    /// of number. `name` and `from_name` read it.
    const NAMES: &'static [(&'static str, i32)];

    /// The `.proto` name and number of every alias: a value declared (under
    /// `option allow_alias = true`) with a number an earlier value already has. `from_name`
    /// finds these too; `name` gives the first value declared with the number.
    const ALIASES: &'static [(&'static str, i32)] = &[];

    /// The value's name as written in the `.proto`, or `None` for an undeclared number.
    fn name(self) -> Option<&'static str> {
        name_of(Self::NAMES, self.into())
    }

    /// The value with this `.proto` name, aliases included, if the enum declares one.
    fn from_name(name: &str) -> Option<Self> {
        number_of(Self::NAMES, name)
            .or_else(|| number_of(Self::ALIASES, name))
            .map(Self::from)
    }

    /// Whether the `.proto` declares this number.
    fn is_known(self) -> bool {
        self.name().is_some()
    }
}

/// The name of `number` in `names`, which is sorted by number. Not generic, so that each enum
/// compiles only the call to it; `#[inline]` so that a closed enum's decode, which asks it
/// whether each number is declared, can inline it.
#[inline]
fn name_of(names: &'static [(&'static str, i32)], number: i32) -> Option<&'static str> {
    // Most enums number their values 0, 1, 2, ... without gaps: then the number is the index.
    if let Some(&(name, n)) = usize::try_from(number).ok().and_then(|i| names.get(i)) {
        if n == number {
            return Some(name);
        }
    }
    let i = names.binary_search_by_key(&number, |&(_, n)| n).ok()?;
    Some(names[i].0)
}

/// The number named `name` in `names`. A linear scan, as a `match` on strings also is; it
/// serves JSON and text parsing, not the binary codec.
fn number_of(names: &[(&'static str, i32)], name: &str) -> Option<i32> {
    names
        .iter()
        .find(|&&(n, _)| n == name)
        .map(|&(_, number)| number)
}

#[cfg(test)]
mod tests {
    use super::{name_of, number_of};

    #[test]
    fn names_are_found_by_index_in_dense_tables_and_by_search_in_sparse_ones() {
        let dense = &[("ZERO", 0), ("ONE", 1), ("TWO", 2)];
        assert_eq!(name_of(dense, 1), Some("ONE"));
        assert_eq!(name_of(dense, 3), None);
        assert_eq!(name_of(dense, -1), None);
        // Index 1 holds 5, so 1 and 5 are both found by the search.
        let sparse = &[("MINUS", -7), ("FIVE", 5), ("NINE", 9), ("BIG", i32::MAX)];
        for (name, number) in sparse {
            assert_eq!(name_of(sparse, *number), Some(*name));
        }
        assert_eq!(name_of(sparse, 1), None);
        assert_eq!(name_of(sparse, 0), None);
        assert_eq!(name_of(sparse, i32::MIN), None);
        assert_eq!(name_of(&[], 0), None);
    }

    #[test]
    fn numbers_are_found_by_exact_name() {
        let names = &[("A", 0), ("AB", 3)];
        assert_eq!(number_of(names, "AB"), Some(3));
        assert_eq!(number_of(names, "ab"), None);
        assert_eq!(number_of(names, ""), None);
    }
}
