use std::fmt;

/// Fields a message received that its schema does not declare, kept as their original bytes.
///
/// They are written back after the known fields on encode, so a message passing through a
/// program built with an older schema loses nothing.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct UnknownFields {
    raw: Vec<u8>,
}

impl UnknownFields {
    /// Whether no unknown field was kept.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The kept fields, keys included, in the order they arrived.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// Drops every kept field.
    pub fn clear(&mut self) {
        self.raw.clear();
    }

    /// Appends already-encoded fields, keys included.
    pub fn extend_raw(&mut self, bytes: &[u8]) {
        self.raw.extend_from_slice(bytes);
    }

    /// Keeps only the fields that `keep` accepts, given each one's key (field number and wire
    /// type) and the bytes of its value (after the key).
    pub(crate) fn retain_fields(&mut self, mut keep: impl FnMut(u32, &[u8]) -> bool) {
        let mut kept = Vec::with_capacity(self.raw.len());
        let mut r = crate::encoding::Reader::new(&self.raw);
        let mut start = 0;
        // The bytes were written as whole fields by the decoder, so they read back; should
        // they not, everything is kept rather than anything lost.
        while let Ok(Some(tag)) = r.next_tag() {
            let value = r.position();
            if r.skip_field(tag).is_err() {
                return;
            }
            if keep(tag, &self.raw[value..r.position()]) {
                kept.extend_from_slice(&self.raw[start..r.position()]);
            }
            start = r.position();
        }
        if start == self.raw.len() {
            self.raw = kept;
        }
    }

    /// Encoded size of the kept fields but those whose key is in `stale` (0 entries stand for
    /// none): values of proto2 strings that were not UTF-8, which a value the program set
    /// since has replaced. Generated code calls it.
    #[doc(hidden)]
    pub fn encoded_len_except(&self, stale: &[u32]) -> usize {
        if self.raw.is_empty() || stale.iter().all(|&t| t == 0) {
            return self.raw.len();
        }
        let mut len = 0;
        self.each_field(|tag, field| {
            if !stale.contains(&tag) {
                len += field.len();
            }
        });
        len
    }

    /// Appends the kept fields but those whose key is in `stale` (see
    /// [`encoded_len_except`](UnknownFields::encoded_len_except)).
    #[doc(hidden)]
    pub fn encode_except(&self, stale: &[u32], buf: &mut Vec<u8>) {
        if self.raw.is_empty() || stale.iter().all(|&t| t == 0) {
            buf.extend_from_slice(&self.raw);
            return;
        }
        self.each_field(|tag, field| {
            if !stale.contains(&tag) {
                buf.extend_from_slice(field);
            }
        });
    }

    /// [`encoded_len_except`](UnknownFields::encoded_len_except), also leaving out the fields
    /// `replaced` picks by key and value bytes (map entries whose key the program has set).
    #[doc(hidden)]
    pub fn encoded_len_except_entries(
        &self,
        stale: &[u32],
        replaced: impl Fn(u32, &[u8]) -> bool,
    ) -> usize {
        if self.raw.is_empty() {
            return 0;
        }
        let mut len = 0;
        self.each_field(|tag, field| {
            if !stale.contains(&tag) && !replaced(tag, value_of(field)) {
                len += field.len();
            }
        });
        len
    }

    /// [`encode_except`](UnknownFields::encode_except), also leaving out the fields
    /// `replaced` picks (see [`encoded_len_except_entries`](UnknownFields::encoded_len_except_entries)).
    #[doc(hidden)]
    pub fn encode_except_entries(
        &self,
        stale: &[u32],
        replaced: impl Fn(u32, &[u8]) -> bool,
        buf: &mut Vec<u8>,
    ) {
        if self.raw.is_empty() {
            return;
        }
        self.each_field(|tag, field| {
            if !stale.contains(&tag) && !replaced(tag, value_of(field)) {
                buf.extend_from_slice(field);
            }
        });
    }

    /// Calls `visit` with each kept field's key and its bytes, key included. Fields that do
    /// not read back (none the decoder wrote) are visited as one run, so nothing is dropped.
    fn each_field(&self, mut visit: impl FnMut(u32, &[u8])) {
        let mut r = crate::encoding::Reader::new(&self.raw);
        let mut start = 0;
        while let Ok(Some(tag)) = r.next_tag() {
            if r.skip_field(tag).is_err() {
                break;
            }
            visit(tag, &self.raw[start..r.position()]);
            start = r.position();
        }
        if start < self.raw.len() {
            visit(0, &self.raw[start..]);
        }
    }

    /// Encoded size of the kept fields.
    pub fn encoded_len(&self) -> usize {
        self.raw.len()
    }

    /// Appends the kept fields to `buf`.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.raw);
    }
}

impl fmt::Debug for UnknownFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnknownFields({} bytes)", self.raw.len())
    }
}

/// The bytes of a field's value: what follows its key.
fn value_of(field: &[u8]) -> &[u8] {
    let key_len = field
        .iter()
        .position(|b| b & 0x80 == 0)
        .map_or(field.len(), |i| i + 1);
    &field[key_len..]
}
