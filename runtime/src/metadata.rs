use base64::Engine as _;

/// gRPC's base64 for binary metadata: emitted unpadded, accepted either way.
pub(crate) const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Key-value pairs sent along with a call: request metadata, response headers and trailers.
///
/// Entries keep their order and may repeat a key, as gRPC metadata does. Keys are compared as
/// given; gRPC over HTTP/2 needs lowercase keys and visible-ASCII values. Binary values go
/// under keys ending in `-bin`, as gRPC's metadata does: [`insert_bin`](Metadata::insert_bin)
/// and [`get_bin`](Metadata::get_bin) keep them as base64 text (RFC 4648, unpadded), which is
/// how they travel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: Vec<(String, String)>,
}

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry, keeping any earlier one with the same key.
    pub fn append(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.entries.push((key.into(), value.into()));
    }

    /// Replaces every entry with this key by one with `value`.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        self.entries.retain(|(k, _)| *k != key);
        self.entries.push((key, value.into()));
    }

    /// Removes every entry with this key; returns whether there was one.
    pub fn remove(&mut self, key: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(k, _)| k != key);
        self.entries.len() != before
    }

    /// The first value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value for `key`, in order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every entry, in the order added.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Appends every entry of `other`, after this one's.
    pub fn extend(&mut self, other: Metadata) {
        self.entries.extend(other.entries);
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Replaces every entry with this key by one carrying `value` as base64. `key` should end
    /// in `-bin`, which tells gRPC peers to decode it.
    pub fn insert_bin(&mut self, key: impl Into<String>, value: &[u8]) {
        self.insert(key, BASE64.encode(value));
    }

    /// Adds an entry carrying `value` as base64, keeping earlier ones with this key.
    pub fn append_bin(&mut self, key: impl Into<String>, value: &[u8]) {
        self.append(key, BASE64.encode(value));
    }

    /// The first value for `key`, decoded from base64 (padded or not, as gRPC accepts).
    /// `None` when there is no such entry or its value is not base64.
    pub fn get_bin(&self, key: &str) -> Option<Vec<u8>> {
        BASE64.decode(self.get(key)?).ok()
    }

    /// Bytes the keys and values take, the measure metadata limits use.
    pub fn byte_len(&self) -> usize {
        self.entries.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Metadata {
            entries: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_values_travel_as_base64() {
        let mut metadata = Metadata::new();
        metadata.insert_bin("x-trace-bin", &[0xab, 0xab, 0xab]);
        assert_eq!(metadata.get("x-trace-bin"), Some("q6ur"));
        assert_eq!(metadata.get_bin("x-trace-bin"), Some(vec![0xab; 3]));
        metadata.insert("x-two-bin", "AQI=");
        assert_eq!(metadata.get_bin("x-two-bin"), Some(vec![1, 2]));
        metadata.insert("x-two-bin", "AQI");
        assert_eq!(metadata.get_bin("x-two-bin"), Some(vec![1, 2]));
        metadata.insert("x-bad-bin", "not base64!");
        assert_eq!(metadata.get_bin("x-bad-bin"), None);
    }

    #[test]
    fn metadata_keeps_order_and_insert_replaces() {
        let mut md = Metadata::new();
        md.append("a", "1");
        md.append("a", "2");
        md.insert("b", "3");
        assert_eq!(md.get("a"), Some("1"));
        assert_eq!(md.get_all("a").collect::<Vec<_>>(), ["1", "2"]);
        md.insert("a", "4");
        assert_eq!(md.iter().collect::<Vec<_>>(), [("b", "3"), ("a", "4")]);
        assert!(md.remove("b"));
        assert!(!md.remove("b"));
        assert_eq!(md.byte_len(), 2);
    }
}
