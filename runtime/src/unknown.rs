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

    /// Keeps only the fields whose key (field number and wire type) `keep` accepts.
    pub(crate) fn retain_fields(&mut self, mut keep: impl FnMut(u32) -> bool) {
        let mut kept = Vec::with_capacity(self.raw.len());
        let mut r = crate::encoding::Reader::new(&self.raw);
        let mut start = 0;
        // The bytes were written as whole fields by the decoder, so they read back; should
        // they not, everything is kept rather than anything lost.
        while let Ok(Some(tag)) = r.next_tag() {
            if r.skip_field(tag).is_err() {
                return;
            }
            if keep(tag) {
                kept.extend_from_slice(&self.raw[start..r.position()]);
            }
            start = r.position();
        }
        if start == self.raw.len() {
            self.raw = kept;
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
