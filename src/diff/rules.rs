//! Comparison rules (from the TOML config) and the names of the equivalence
//! rules that are counted in [`super::Comparison::equivalences`].

use serde::Deserialize;

/// Rule names used as keys of [`super::Comparison::equivalences`].
pub mod rule_names {
    /// Content-Type values equal after normalising case and whitespace around `;`.
    pub const CONTENT_TYPE_NORMALISED: &str = "content_type_normalised";
    /// Content-Type values equal but for a parameter that means nothing for
    /// the media type (`charset=utf-8` on JSON).
    pub const MEDIA_TYPE_PARAMS: &str = "media_type_params";
    /// The candidate's own origin (the tool rewrote Host) read as
    /// production's in URL headers and bodies; per occurrence.
    pub const HOST_REWRITE: &str = "host_rewrite";
    /// Bodies equal only after decoding their Content-Encoding.
    pub const CONTENT_ENCODING: &str = "content_encoding";
    /// Objects with the same keys in a different order.
    pub const KEY_ORDER: &str = "key_order";
    /// Numbers whose text differs but whose exact decimal values are equal.
    pub const NUMBER_FORMAT: &str = "number_format";
    /// RFC 3339 timestamps whose text differs but that denote the same instant.
    pub const TIMESTAMP_INSTANT: &str = "timestamp_instant";
    /// Arrays (configured as unordered) equal as multisets but not in order.
    pub const UNORDERED_ARRAY: &str = "unordered_array";
    /// A member whose value is `null` on one side and absent on the other.
    pub const NULL_EQUALS_MISSING: &str = "null_equals_missing";
    /// Texts equal after normalising CRLF and trailing newlines.
    pub const LINE_ENDINGS: &str = "line_endings";
}

/// How two answers are compared. Deserialized from the TOML config by the caller;
/// every field is optional there.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompareRules {
    /// Extra header names to ignore (case-insensitive), added to the defaults.
    pub ignore_headers: Vec<String>,
    /// Compare headers at all (default true).
    pub compare_headers: bool,
    /// JSON pointers whose differences are set aside. A `*` segment matches any
    /// one segment, a `**` segment any number of segments (zero included).
    pub ignore_paths: Vec<String>,
    /// JSON pointers (same wildcards) of arrays compared as multisets.
    pub unordered_arrays: Vec<String>,
    /// Treat a `null` member as equal to an absent one (default false).
    pub null_equals_missing: bool,
    /// Compare two RFC 3339 timestamp strings as instants (default true).
    pub timestamps_as_instants: bool,
    /// Compare numbers by exact decimal value rather than text (default true).
    pub numbers_by_value: bool,
}

impl Default for CompareRules {
    fn default() -> Self {
        CompareRules {
            ignore_headers: Vec::new(),
            compare_headers: true,
            ignore_paths: Vec::new(),
            unordered_arrays: Vec::new(),
            null_equals_missing: false,
            timestamps_as_instants: true,
            numbers_by_value: true,
        }
    }
}
