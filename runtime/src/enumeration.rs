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

    /// The value's name as written in the `.proto`, or `None` for an undeclared number.
    fn name(self) -> Option<&'static str>;

    /// The value with this `.proto` name, if the enum declares one.
    fn from_name(name: &str) -> Option<Self>;

    /// Whether the `.proto` declares this number.
    fn is_known(self) -> bool {
        self.name().is_some()
    }
}
